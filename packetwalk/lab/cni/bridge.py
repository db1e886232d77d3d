"""The bridge CNI: Debian's bridge + host-local + portmap plugins, a static
route per node between nodes (what kindnetd or flannel's host-gw would do),
and kube-router in firewall-only mode as the NetworkPolicy enforcer.

Dual-stack (lab up --ip-family dual): host-local gets a second range set (the
node's IPv6 /64) and a ::/0 route, and each node routes the others' pod /64s
via their underlay IPv6, as it does their IPv4 /24s.

IPv6-only (lab up --ip-family ipv6): the node's one pod CIDR is its IPv6 /64. It is
host-local's only range set, with a ::/0 route, and the nodes route each other's
/64s via their underlay IPv6: the IPv6 half of the dual-stack lab, alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import ip_network

from .. import paths, versions
from .. import topology as t
from ..errors import LabError
from ..network import ip
from ..processes import in_netns, run
from ..state import State
from . import Cni
from ._policy import start_enforcer, stop_enforcer

CONFLIST = "10-packetwalk.conflist"
BRIDGE = "cni0"


def _ipv6(cidr: str) -> bool:
    return ip_network(cidr).version == 6


def conflist(pod_cidr: str, mtu: int = 1500, hairpin: bool = True, pod_cidr6: str | None = None) -> str:
    """pod_cidr: the node's pod CIDR (an IPv6-only lab's is its IPv6 /64); pod_cidr6:
    a dual-stack node's IPv6 pod CIDR, a second range set for host-local. Each range
    set brings its family's default route."""
    cidrs = [pod_cidr] + ([pod_cidr6] if pod_cidr6 else [])
    ranges = [[{"subnet": c}] for c in cidrs]
    routes = [{"dst": "::/0" if _ipv6(c) else "0.0.0.0/0"} for c in cidrs]
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "packetwalk",
        "plugins": [
            {
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                # Lets a pod reach itself through its own Service (kubenet's hairpin-veth).
                "hairpinMode": hairpin, "mtu": mtu,
                "ipam": {"type": "host-local", "ranges": ranges, "routes": routes},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=1)


@dataclass(frozen=True)
class PodRoute:
    """One static route to a node's pod CIDR: where it lives (a node's namespace, None
    for the host), its family flag, the CIDR and the gateway (the node's underlay IP)."""

    ns: str | None
    ipv6: bool
    cidr: str
    via: str

    @property
    def _family(self) -> list[str]:
        return ["-6"] if self.ipv6 else []

    def replace_args(self) -> list[str]:
        """The `ip` arguments that write it (lab up, and a heal)."""
        return [*self._family, "route", "replace", self.cidr, "via", self.via]

    def del_args(self) -> list[str]:
        """The `ip` arguments that remove it (cross-node-route)."""
        return [*self._family, "route", "del", self.cidr]


def pod_routes(nodes: list[t.Node], cidrs: dict[str, str], ipv6: bool = False) -> list[PodRoute]:
    """A route to each node's pod CIDR via its node IP, in every other node and then the
    host (namespace None). ipv6: cidrs are the IPv6 pod CIDRs, routed via the nodes'
    underlay IPv6; the host's ones are more specific than its fd10::/48 blackhole and
    lead into pw-br0."""
    def via(n: t.Node) -> str:
        return str(n.ip6 if ipv6 else n.ip)
    found: list[PodRoute] = []
    for n in nodes:
        for other in nodes:
            if other.name != n.name and other.name in cidrs:
                found.append(PodRoute(n.name, ipv6, cidrs[other.name], via(other)))
    for n in nodes:
        if n.name in cidrs:
            found.append(PodRoute(None, ipv6, cidrs[n.name], via(n)))
    return found


def route_pod_cidrs(nodes: list[t.Node], cidrs: dict[str, str]) -> None:
    """Routes to each node's pod CIDR via its node IP, in every other node and the host,
    in the CIDRs' family (an IPv6-only lab's are IPv6)."""
    for route in pod_routes(nodes, cidrs, ipv6=any(_ipv6(c) for c in cidrs.values())):
        ip(*route.replace_args(), ns=route.ns)


def _family(cidr: str) -> str:
    return "ipv6" if _ipv6(cidr) else "ipv4"


def _families(*maps: dict[str, str] | None) -> set[str]:
    return {_family(c) for m in maps if m for c in m.values()}


def cut_routes(nodes: list[t.Node], cidrs: dict[str, str], node: t.Node,
               cidrs6: dict[str, str] | None = None,
               family: str | None = None) -> list[PodRoute]:
    """The routes cross-node-route cuts and its heal puts back, as pod_routes writes
    them: in every other node, the route to `node`'s pod CIDR in each family given
    (cidrs, and a dual-stack lab's cidrs6), only `family`'s when named ("ipv6":
    cross-node-route-ipv6). The host's routes are never cut."""
    found: list[PodRoute] = []
    for by_node in (cidrs, cidrs6 or {}):
        cidr = by_node.get(node.name)
        if cidr is None or (family is not None and _family(cidr) != family):
            continue
        found += [r for r in pod_routes(nodes, by_node, ipv6=_ipv6(cidr))
                  if r.ns is not None and r.cidr == cidr]
    return found


def _nothing_to_cut(cidrs: dict[str, str], node: t.Node, cidrs6: dict[str, str] | None,
                    family: str | None) -> str:
    """Why cut_routes found no route to `node`'s pods, as one line."""
    have = _families(cidrs, cidrs6)
    kind = f"{family} " if family else ""
    if family is not None and family not in have:
        why = f"the lab routes its pods in {', '.join(sorted(have)) or 'no family'} only"
    elif not any(by_node.get(node.name) for by_node in (cidrs, cidrs6 or {})):
        why = f"{node.name} has no {kind}pod CIDR"
    else:
        why = "no other node routes to them"
    return f"no {kind}route to {node.name}'s pods to cut: {why}"


def hairpin_ports(node: t.Node, on: bool, bridge: str = BRIDGE) -> None:
    """Switch hairpin on the running pods' ports of the node's bridge."""
    for line in ip("-o", "link", "show", "master", bridge, ns=node.name, check=False).splitlines():
        port = line.split(":")[1].strip().split("@")[0]
        run(in_netns(node.name) + ["bridge", "link", "set", "dev", port,
             "hairpin", "on" if on else "off"], f"hairpin on {node.name}/{port}")


def _write_conflist(node: t.Node, pod_cidr: str, hairpin: bool = True, pod_cidr6: str | None = None) -> None:
    netd = paths.cni_conf_dir(node.name)
    netd.mkdir(parents=True, exist_ok=True)
    (netd / CONFLIST).write_text(conflist(pod_cidr, hairpin=hairpin, pod_cidr6=pod_cidr6))


def pod_cidr6_of(text: str) -> str | None:
    """The second (IPv6) range set of a conflist this module wrote (None: a
    single-family lab's, IPv4 or IPv6-only, whose one range set is its pod_cidr)."""
    ranges = json.loads(text)["plugins"][0]["ipam"]["ranges"]
    return ranges[1][0]["subnet"] if len(ranges) > 1 else None


def _written_pod_cidr6(node: t.Node) -> str | None:
    """What the node's conflist holds for IPv6: a rewrite (hairpin-off) keeps it, as
    faults only know the nodes' IPv4 CIDRs."""
    f = paths.cni_conf_dir(node.name) / CONFLIST
    return pod_cidr6_of(f.read_text()) if f.exists() else None


class Bridge(Cni):
    name = "bridge"
    builds = ("kube-router",)
    ip_families = ("ipv4", "dual", "ipv6")
    faults_supported = frozenset({
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "kube-proxy-broken", "cross-node-route", "cross-node-route-ipv6", "egress-masquerade",
        "policy-enforcer-down", "nodeport-blocked", "nodeport-udp-blocked", "udp-dropped", "udp-lossy", "mtu-mismatch", "hairpin-off",
        "policy-ignores-except", "policy-ignores-named-ports"})

    def configure_node(self, node: t.Node, pod_cidr: str, pod_cidr6: str | None = None) -> None:
        _write_conflist(node, pod_cidr, pod_cidr6=pod_cidr6)

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str],
                    cidrs6: dict[str, str] | None = None) -> None:
        route_pod_cidrs(nodes, cidrs)
        if cidrs6:
            route_pod_cidrs(nodes, cidrs6)

    def start(self, state: State, node: t.Node) -> None:
        start_enforcer(state, node)

    def stop(self, state: State, node: t.Node) -> None:
        stop_enforcer(state, node)

    def cut_off(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node,
                cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        routes = cut_routes(nodes, cidrs, node, cidrs6, family)
        if not routes:  # else the fault would read as injected with nothing cut
            raise LabError(_nothing_to_cut(cidrs, node, cidrs6, family))
        for route in routes:
            ip(*route.del_args(), ns=route.ns, check=False)

    def reconnect(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node,
                  cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        for route in cut_routes(nodes, cidrs, node, cidrs6, family):
            ip(*route.replace_args(), ns=route.ns)

    def set_hairpin(self, nodes: list[t.Node], cidrs: dict[str, str], on: bool) -> None:
        """The CNI config without hairpinMode, as on a cluster set up that way: new pods
        get it too. Existing pods' bridge ports are switched the same way."""
        for n in nodes:
            _write_conflist(n, cidrs[n.name], hairpin=on, pod_cidr6=_written_pod_cidr6(n))
            hairpin_ports(n, on)

    def versions(self) -> str:
        return f"kube-router {versions.KUBE_ROUTER}"


CNI = Bridge()
