"""The lab's wires: the underlay bridge, node and outside namespaces, routes.

Safety: the host never forwards (ip_forward stays as it was, 0 here). The
host reaches the lab only through the bridge, every lab range is routed into
it or blackholed, and every node's default route points at the outside
namespace, which routes nowhere else. See tests/lab/test_safety.py.

A dual-stack lab (--ip-family dual) adds IPv6 the same way: the host blackholes
fd10::/48 (every lab range) and 2001:db8::/32 (the outside world) before the
lab's more specific IPv6 routes exist, never forwards IPv6 (its forwarding
sysctls are left as they are), and nothing in the lab accepts router
advertisements. Each node's IPv6 default route leads to pw-outside, which has
none.

An IPv6-only lab (--ip-family ipv6) is built on exactly these wires: the same IPv4
underlay and the same IPv6 beside it. Kubernetes then uses only the IPv6 (pods,
Services and the nodes' InternalIPs); the IPv4 left on the underlay carries nothing
of the cluster's.
"""

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from . import topology as t
from .nodes import is_mountpoint
from .processes import in_netns, run

NETNS = Path("/run/netns")


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    prefix = ["ip", "-n", ns] if ns else ["ip"]
    return run(prefix + list(args), f"ip {' '.join(args)}", timeout=15, check=check)


def exists(name: str) -> bool:
    return (NETNS / name).exists()


def sysctl(ns: str, key: str, value: str) -> None:
    run(in_netns(ns) + ["sysctl", "-qw", f"{key}={value}"], f"sysctl {key} in {ns}")


# The host's IPv6 blackholes (dual-stack, IPv6-only): every lab IPv6 range, and the outside world's.
HOST_BLACKHOLES6 = (t.ULA, t.DOCUMENTATION6)


def make_bridge(family: str = t.DEFAULT_IP_FAMILY) -> None:
    if not Path(f"/sys/class/net/{t.BRIDGE}").exists():
        ip("link", "add", t.BRIDGE, "type", "bridge")
    ip("addr", "replace", f"{t.HOST_IP}/{t.UNDERLAY.prefixlen}", "dev", t.BRIDGE)
    if t.has_ipv6(family):
        # Blackholes before the first lab IPv6 address: from here on, a lab IPv6
        # destination that no more specific route takes dies in the host, never
        # reaching its IPv6 default route (the uplink).
        for net in HOST_BLACKHOLES6:
            ip("-6", "route", "replace", "blackhole", str(net))
        # Per interface, gone with it: the host's own settings stay as they are.
        run(["sysctl", "-qw", f"net.ipv6.conf.{t.BRIDGE}.accept_ra=0"], f"sysctl accept_ra on {t.BRIDGE}")
        ip("-6", "addr", "replace", f"{t.HOST_IP6}/{t.UNDERLAY6.prefixlen}", "dev", t.BRIDGE, "nodad")
    ip("link", "set", t.BRIDGE, "up")


def _plug(ns: str, host_if: str, addr: str) -> None:
    """A veth from the bridge into namespace ns, where it is called eth0."""
    if not exists(ns):
        ip("netns", "add", ns)
    if not Path(f"/sys/class/net/{host_if}").exists():
        ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", host_if, "master", t.BRIDGE, "up")
    ip("addr", "replace", addr, "dev", "eth0", ns=ns)
    ip("link", "set", "lo", "up", ns=ns)
    ip("link", "set", "eth0", "up", ns=ns)


def _plug6(ns: str, addr: str) -> None:
    """IPv6 on the namespace's eth0 (plugged already). Nothing learns a route or an
    address from a router advertisement; nodad: `up` does not race duplicate address
    detection (every lab address is unique by plan)."""
    for conf in ("all", "default", "eth0"):
        sysctl(ns, f"net.ipv6.conf.{conf}.accept_ra", "0")
    ip("-6", "addr", "replace", addr, "dev", "eth0", "nodad", ns=ns)


def make_outside(family: str = t.DEFAULT_IP_FAMILY) -> None:
    """The simulated internet: one router namespace that owns 198.51.100.0/24
    (and 2001:db8:100::/64 in a dual-stack or IPv6-only lab)."""
    ns = t.OUTSIDE_NS
    _plug(ns, "pwv-out", f"{t.ROUTER_IP}/{t.UNDERLAY.prefixlen}")
    # No dummy interfaces in this kernel; a /32 on lo serves the same purpose.
    ip("addr", "replace", f"{t.OUTSIDE_HOST_IP}/32", "dev", "lo", ns=ns)
    sysctl(ns, "net.ipv4.ip_forward", "0")
    if t.has_ipv6(family):
        _plug6(ns, f"{t.ROUTER_IP6}/{t.UNDERLAY6.prefixlen}")
        ip("-6", "addr", "replace", f"{t.OUTSIDE_HOST_IP6}/128", "dev", "lo", "nodad", ns=ns)
        # As in IPv4: the outside answers, it forwards nothing, and has no default route.
        sysctl(ns, "net.ipv6.conf.all.forwarding", "0")


def make_node(node: t.Node, family: str = t.DEFAULT_IP_FAMILY) -> None:
    _plug(node.name, node.host_veth, f"{node.ip}/{t.UNDERLAY.prefixlen}")
    ip("route", "replace", "default", "via", str(t.ROUTER_IP), ns=node.name)
    sysctl(node.name, "net.ipv4.ip_forward", "1")
    # Same-node Service traffic on the CNI bridge must pass through iptables.
    sysctl(node.name, "net.bridge.bridge-nf-call-iptables", "1")
    if t.EGRESS_NAT["ipv4"]:
        masquerade_to_outside(node.name)
    if t.has_ipv6(family):
        _plug6(node.name, f"{node.ip6}/{t.UNDERLAY6.prefixlen}")
        sysctl(node.name, "net.ipv6.conf.all.forwarding", "1")
        ip("-6", "route", "replace", "default", "via", str(t.ROUTER_IP6), ns=node.name)
        # ip6tables too: kube-proxy runs an IPv6 proxier beside the IPv4 one.
        sysctl(node.name, "net.bridge.bridge-nf-call-ip6tables", "1")
        if t.EGRESS_NAT["ipv6"]:
            masquerade_to_outside(node.name, ipv6=True)


def masquerade_to_outside(ns: str, ipv6: bool = False) -> None:
    """Pods leaving the cluster appear as the node, as on a cloud VM with a NAT gateway.
    ipv6: the same chain in ip6tables, for the IPv6 pod and underlay ranges."""
    tool, pods, underlay = ("ip6tables", t.POD_CIDR6, t.UNDERLAY6) if ipv6 else ("iptables", t.POD_CIDR, t.UNDERLAY)
    ipt = in_netns(ns) + [tool, "-w", "-t", "nat"]
    if run(ipt + ["-S", "PW-MASQ"], tool, check=False) == "":
        run(ipt + ["-N", "PW-MASQ"], f"{tool} -N PW-MASQ")
    if "-j PW-MASQ" not in run(ipt + ["-S", "POSTROUTING"], tool):
        run(ipt + ["-A", "POSTROUTING", "-s", str(pods), "-j", "PW-MASQ"], tool)
    run(ipt + ["-F", "PW-MASQ"], f"{tool} -F PW-MASQ")
    for keep in (pods, underlay):  # east-west keeps pod source IPs
        run(ipt + ["-A", "PW-MASQ", "-d", str(keep), "-j", "RETURN"], tool)
    run(ipt + ["-A", "PW-MASQ", "-j", "MASQUERADE"], tool)


def host_routes(family: str = t.DEFAULT_IP_FAMILY) -> None:
    """Anything in a lab range that is not more specifically routed dies here (IPv6:
    the blackholes make_bridge added first)."""
    for net in (t.POD_CIDR, t.SERVICE_CIDR):
        ip("route", "replace", "blackhole", str(net))
    ip("route", "replace", str(t.OUTSIDE), "via", str(t.ROUTER_IP))
    if t.has_ipv6(family):
        ip("-6", "route", "replace", str(t.OUTSIDE6), "via", str(t.ROUTER_IP6))


def _route_dst(line: str) -> str:
    """The destination of an `ip route show` line ("default" for the default route)."""
    words = line.split()
    return words[1] if words[0] in ("blackhole", "unreachable", "prohibit", "local", "broadcast") else words[0]


def route_dev(addr: str) -> str:
    """The host's egress device for addr, or "blackhole" when the host drops it."""
    v6 = ":" in addr
    fam = ["-6"] if v6 else []
    out = ip(*fam, "route", "get", addr, check=False)
    if out:
        words = out.split()
        if words[0] in ("blackhole", "unreachable", "prohibit"):
            return "blackhole" if words[0] == "blackhole" else "unroutable"
        return words[words.index("dev") + 1] if "dev" in words else "?"
    # `ip route get` refuses blackholed destinations; the longest match says why.
    match = [r for r in ip(*fam, "route", "show", "match", addr, check=False).splitlines() if r.strip()]
    whole = 128 if v6 else 32

    def prefix(r: str) -> int:
        dst = _route_dst(r)
        return 0 if dst == "default" else int(dst.partition("/")[2] or whole)
    specific = max(match, key=prefix, default="")
    return "blackhole" if specific.startswith("blackhole") else "unroutable"


def route_via(addr: str) -> str:
    """The gateway the host's route to addr names ("" when it names none)."""
    words = ip(*(["-6"] if ":" in addr else []), "route", "get", addr, check=False).split()
    return words[words.index("via") + 1] if "via" in words else ""


def sample_addresses(net: IPv4Network | IPv6Network) -> list[str]:
    return [str(net.network_address + 1), str(net.network_address + net.num_addresses // 2),
            str(net.broadcast_address - 1)]


def teardown() -> None:
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith("pw-"):
            ip("netns", "del", name, check=False)
    for link in Path("/sys/class/net").iterdir():
        if link.name.startswith("pwv") or link.name == t.BRIDGE:
            ip("link", "del", link.name, check=False)
    for net in (t.POD_CIDR, t.SERVICE_CIDR, t.OUTSIDE):
        ip("route", "del", str(net), check=False)
    for line in ip("route", "show", check=False).splitlines():
        dst = line.split()[0]
        if dst != "default" and "/" in dst and IPv4Network(dst).subnet_of(t.POD_CIDR):
            ip("route", "del", dst, check=False)
    for args in lab_routes6(ip("-6", "route", "show", check=False)):
        ip(*args, check=False)


def release_netns_dir(made: bool, netns: Path = NETNS, mounted=None, umount=None) -> None:
    """/run/netns once the lab's netns are deleted: ip(8)'s bind of it on itself is
    unmounted, every layer of it, when no netns is left in it, whoever made it (an
    `up` that found one left by an earlier lab recorded made False, and then no `down`
    ever took it; ip makes it again when next needed). A netns someone else keeps
    there keeps the mount. The directory goes too when the lab made it. Idempotent."""
    mounted = mounted or is_mountpoint
    umount = umount or (lambda p: run(["umount", str(p)], f"unmount {p}", check=False))
    for _ in range(8):  # bounded: an umount that fails must not spin
        if not mounted(netns) or any(netns.iterdir()):
            break
        umount(netns)
    if made and netns.is_dir() and not mounted(netns) and not any(netns.iterdir()):
        netns.rmdir()


def lab_routes6(shown: str) -> list[list[str]]:
    """`ip` arguments deleting a dual-stack or IPv6-only lab's IPv6 routes from the
    host, from what `ip -6 route show` lists (read, not assumed: a lab whose state file was lost
    comes down too; an IPv4 lab's host lists none). Only the lab's own: its
    blackholes, the outside /64 and pod /64s. The blackholes go last: no lab
    route is ever left without the blackhole behind it."""
    routes, holes = [], []
    for line in shown.splitlines():
        if not line.strip():
            continue
        dst = _route_dst(line)
        try:
            net = ip_network(dst)
        except ValueError:
            continue
        if line.startswith("blackhole") and net in HOST_BLACKHOLES6:
            holes.append(["-6", "route", "del", "blackhole", str(net)])
        elif not line.startswith("blackhole") and net.version == 6 and (
                net == t.OUTSIDE6 or net.subnet_of(t.POD_CIDR6)):
            routes.append(["-6", "route", "del", str(net)])
    return routes + holes
