"""The lab's wires: the underlay bridge, node and outside namespaces, routes.

Safety: the host never forwards (ip_forward stays as it was, 0 here). The
host reaches the lab only through the bridge, every lab range is routed into
it or blackholed, and every node's default route points at the outside
namespace, which routes nowhere else. See tests/lab/test_safety.py.
"""

from ipaddress import IPv4Network
from pathlib import Path

from . import topology as t
from .processes import in_netns, run

NETNS = Path("/run/netns")


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    prefix = ["ip", "-n", ns] if ns else ["ip"]
    return run(prefix + list(args), f"ip {' '.join(args)}", timeout=15, check=check)


def exists(name: str) -> bool:
    return (NETNS / name).exists()


def sysctl(ns: str, key: str, value: str) -> None:
    run(in_netns(ns) + ["sysctl", "-qw", f"{key}={value}"], f"sysctl {key} in {ns}")


def make_bridge() -> None:
    if not Path(f"/sys/class/net/{t.BRIDGE}").exists():
        ip("link", "add", t.BRIDGE, "type", "bridge")
    ip("addr", "replace", f"{t.HOST_IP}/{t.UNDERLAY.prefixlen}", "dev", t.BRIDGE)
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


def make_outside() -> None:
    """The simulated internet: one router namespace that owns 198.51.100.0/24."""
    ns = t.OUTSIDE_NS
    _plug(ns, "pwv-out", f"{t.ROUTER_IP}/{t.UNDERLAY.prefixlen}")
    # No dummy interfaces in this kernel; a /32 on lo serves the same purpose.
    ip("addr", "replace", f"{t.OUTSIDE_HOST_IP}/32", "dev", "lo", ns=ns)
    sysctl(ns, "net.ipv4.ip_forward", "0")


def make_node(node: t.Node) -> None:
    _plug(node.name, node.host_veth, f"{node.ip}/{t.UNDERLAY.prefixlen}")
    ip("route", "replace", "default", "via", str(t.ROUTER_IP), ns=node.name)
    sysctl(node.name, "net.ipv4.ip_forward", "1")
    # Same-node Service traffic on the CNI bridge must pass through iptables.
    sysctl(node.name, "net.bridge.bridge-nf-call-iptables", "1")
    masquerade_to_outside(node.name)


def masquerade_to_outside(ns: str) -> None:
    """Pods leaving the cluster appear as the node, as on a cloud VM with a NAT gateway."""
    ipt = in_netns(ns) + ["iptables", "-w", "-t", "nat"]
    if run(ipt + ["-S", "PW-MASQ"], "iptables", check=False) == "":
        run(ipt + ["-N", "PW-MASQ"], "iptables -N PW-MASQ")
    if "-j PW-MASQ" not in run(ipt + ["-S", "POSTROUTING"], "iptables"):
        run(ipt + ["-A", "POSTROUTING", "-s", str(t.POD_CIDR), "-j", "PW-MASQ"], "iptables")
    run(ipt + ["-F", "PW-MASQ"], "iptables -F PW-MASQ")
    for keep in (t.POD_CIDR, t.UNDERLAY):  # east-west keeps pod source IPs
        run(ipt + ["-A", "PW-MASQ", "-d", str(keep), "-j", "RETURN"], "iptables")
    run(ipt + ["-A", "PW-MASQ", "-j", "MASQUERADE"], "iptables")


def host_routes() -> None:
    """Anything in a lab range that is not more specifically routed dies here."""
    for net in (t.POD_CIDR, t.SERVICE_CIDR):
        ip("route", "replace", "blackhole", str(net))
    ip("route", "replace", str(t.OUTSIDE), "via", str(t.ROUTER_IP))


def route_dev(addr: str) -> str:
    """The host's egress device for addr, or "blackhole" when the host drops it."""
    out = ip("route", "get", addr, check=False)
    if out:
        words = out.split()
        return words[words.index("dev") + 1] if "dev" in words else "?"
    # `ip route get` refuses blackholed destinations; the longest match says why.
    match = ip("route", "show", "match", addr, check=False).splitlines()
    specific = max(match, key=lambda r: int(r.split()[1].partition("/")[2] or 32) if r.startswith("blackhole")
                   else int(r.split()[0].partition("/")[2] or 32) if r.split()[0] != "default" else 0,
                   default="")
    return "blackhole" if specific.startswith("blackhole") else "unroutable"


def sample_addresses(net: IPv4Network) -> list[str]:
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
