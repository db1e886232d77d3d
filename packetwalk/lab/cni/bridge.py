"""The bridge CNI: Debian's bridge + host-local + portmap plugins, a static
route per node between nodes (what kindnetd or flannel's host-gw would do),
and kube-router in firewall-only mode as the NetworkPolicy enforcer.
"""

from __future__ import annotations

import json

from .. import paths, versions
from .. import topology as t
from ..network import ip
from ..processes import in_netns, run
from ..state import State
from . import Cni
from ._policy import start_enforcer, stop_enforcer

CONFLIST = "10-packetwalk.conflist"
BRIDGE = "cni0"


def conflist(pod_cidr: str, mtu: int = 1500, hairpin: bool = True) -> str:
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "packetwalk",
        "plugins": [
            {
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                # Lets a pod reach itself through its own Service (kubenet's hairpin-veth).
                "hairpinMode": hairpin, "mtu": mtu,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                         "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=1)


def route_pod_cidrs(nodes: list[t.Node], cidrs: dict[str, str]) -> None:
    """Routes to each node's pod CIDR via its node IP, in every other node and the host."""
    for n in nodes:
        for other in nodes:
            if other.name != n.name and other.name in cidrs:
                ip("route", "replace", cidrs[other.name], "via", str(other.ip), ns=n.name)
    for n in nodes:
        if n.name in cidrs:
            ip("route", "replace", cidrs[n.name], "via", str(n.ip))


def hairpin_ports(node: t.Node, on: bool, bridge: str = BRIDGE) -> None:
    """Switch hairpin on the running pods' ports of the node's bridge."""
    for line in ip("-o", "link", "show", "master", bridge, ns=node.name, check=False).splitlines():
        port = line.split(":")[1].strip().split("@")[0]
        run(in_netns(node.name) + ["bridge", "link", "set", "dev", port,
             "hairpin", "on" if on else "off"], f"hairpin on {node.name}/{port}")


def _write_conflist(node: t.Node, pod_cidr: str, hairpin: bool = True) -> None:
    netd = paths.cni_conf_dir(node.name)
    netd.mkdir(parents=True, exist_ok=True)
    (netd / CONFLIST).write_text(conflist(pod_cidr, hairpin=hairpin))


class Bridge(Cni):
    name = "bridge"
    builds = ("kube-router",)
    faults_supported = frozenset({
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "kube-proxy-broken", "cross-node-route", "egress-masquerade",
        "policy-enforcer-down", "nodeport-blocked", "nodeport-udp-blocked", "udp-dropped", "mtu-mismatch", "hairpin-off",
        "policy-ignores-except", "policy-ignores-named-ports"})

    def configure_node(self, node: t.Node, pod_cidr: str) -> None:
        _write_conflist(node, pod_cidr)

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str]) -> None:
        route_pod_cidrs(nodes, cidrs)

    def start(self, state: State, node: t.Node) -> None:
        start_enforcer(state, node)

    def stop(self, state: State, node: t.Node) -> None:
        stop_enforcer(state, node)

    def cut_off(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
        for other in nodes:
            if other.name != node.name:
                ip("route", "del", cidrs[node.name], ns=other.name, check=False)

    def reconnect(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
        route_pod_cidrs(nodes, cidrs)

    def set_hairpin(self, nodes: list[t.Node], cidrs: dict[str, str], on: bool) -> None:
        """The CNI config without hairpinMode, as on a cluster set up that way: new pods
        get it too. Existing pods' bridge ports are switched the same way."""
        for n in nodes:
            _write_conflist(n, cidrs[n.name], hairpin=on)
            hairpin_ports(n, on)

    def versions(self) -> str:
        return f"kube-router {versions.KUBE_ROUTER}"


CNI = Bridge()
