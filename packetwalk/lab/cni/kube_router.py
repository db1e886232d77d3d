"""kube-router in its full mode, as its kubeadm DaemonSet runs it: on every node,
routing pod CIDRs between the nodes itself (iBGP full mesh among the nodes, the
routes it learns installed as proto 0x11) and enforcing NetworkPolicy;
kube-proxy still does Services.

The pod network is kube-router's own CNI configuration: the bridge plugin on
kube-bridge with host-local IPAM, which the DaemonSet's install-cni init
container copies from its ConfigMap. The lab writes that file per node, with
the node's pod CIDR already in the IPAM ranges where kube-router would insert
it (it inserts what is missing, and sets the MTU from the node's interface).
No routes between nodes are written by the lab.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import ClassVar

from .. import paths, versions
from .. import topology as t
from ..components import BIN, admin_kubeconfig
from ..errors import LabError
from ..network import ip
from ..processes import alive, in_netns, run, start, stop_component
from ..state import State
from . import Cni, CniFault
from .bridge import hairpin_ports

AGENT = "kube-router"
CONFLIST = "10-kuberouter.conflist"  # the DaemonSet's KUBE_ROUTER_CNI_CONF_FILE
CONF_IN_NODE = f"/etc/cni/net.d/{CONFLIST}"
BRIDGE = "kube-bridge"
HEALTH_PORT = 20244
# Where kube-router serves kube_router_build_info (its version): the port its
# metrics had before they became configurable, which its Prometheus docs assume.
METRICS_PORT = 8080
ROUTE_PROTO = "17"  # kube-router's zebraRouteOriginator (0x11), as `ip route` prints it
ROUTE_WAIT = 180.0  # BGP graceful restart keeps a stopped peer's routes 90s by default


def template(pod_cidr: str, hairpin: bool = True) -> str:
    """The DaemonSet ConfigMap's cni-conf.json, with the node's pod CIDR and hairpin
    (kube-router's user guide: "hairpinMode": true on the bridge plugin)."""
    return json.dumps({
        "cniVersion": "0.3.0",
        "name": "mynet",
        "plugins": [
            {"name": "kubernetes", "type": "bridge", "bridge": BRIDGE, "isDefaultGateway": True,
             "hairpinMode": hairpin,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]]}},
            {"type": "portmap", "capabilities": {"snat": True, "portMappings": True}},
        ],
    }, indent=1)


def with_hairpin(conflist: str, on: bool) -> str:
    """The conflist as kube-router left it (its MTU, its ranges), hairpin switched."""
    data = json.loads(conflist)
    for plugin in data["plugins"]:
        if plugin.get("type") == "bridge":
            plugin["hairpinMode"] = on
    return json.dumps(data, indent=1)


def kube_router(node: t.Node) -> list[str]:
    # `env` carries the DaemonSet's variables through nsenter into the node.
    return [
        "env", f"NODE_NAME={node.name}", f"KUBE_ROUTER_CNI_CONF_FILE={CONF_IN_NODE}",
        str(BIN / AGENT), f"--kubeconfig={admin_kubeconfig()}", f"--hostname-override={node.name}",
        "--run-router=true", "--run-firewall=true", "--run-service-proxy=false",
        "--bgp-graceful-restart=true",
        "--enable-ipv4=true", "--enable-ipv6=false", f"--service-cluster-ip-range={t.SERVICE_CIDR}",
        f"--health-port={HEALTH_PORT}", f"--metrics-port={METRICS_PORT}", "--v=1",
    ]


def learned_routes(route_table: str) -> dict[str, str]:
    """{destination: line} of the routes kube-router installed, from `ip -4 route show`."""
    found = {}
    for line in route_table.splitlines():
        words = line.split()
        if "proto" in words and words[words.index("proto") + 1] in (ROUTE_PROTO, "zebra"):
            found[words[0]] = line
    return found


def _conf(node: t.Node):
    return paths.cni_conf_dir(node.name) / CONFLIST


def _routes_on(node: t.Node) -> dict[str, str]:
    return learned_routes(ip("-4", "route", "show", ns=node.name, check=False))


def _await_routes(others: list[t.Node], cidr: str, present: bool, what: str) -> None:
    deadline = time.monotonic() + ROUTE_WAIT
    while any((cidr in _routes_on(n)) != present for n in others):
        if time.monotonic() > deadline:
            waiting = [n.name for n in others if (cidr in _routes_on(n)) != present]
            raise LabError(f"timed out after {ROUTE_WAIT:.0f}s waiting for {what} on {', '.join(waiting)} "
                           f"(logs: {paths.LOG_DIR}/<node>-{AGENT}.log)")
        time.sleep(1)


# A firewall in front of the node's pods: kube-router re-installs a deleted route on
# its next sync, a raw-table drop stays.
def _pod_cidr_drop(op: str, cidr: str) -> list[str]:
    return ["iptables", "-w", "-t", "raw", op, "PREROUTING", "-i", "eth0", "-d", cidr, "-j", "DROP"]


def _bgp_down(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    """kube-router stopped on one node once its routes are learned, as a crashed
    pod would be: its peers drop its session and, after the graceful-restart
    time, the routes to its pods. Its own rules stay, as a dead process leaves them."""
    stop_component(state, AGENT, node.name)
    others = [n for n in nodes if n.name != node.name]
    _await_routes(others, cidrs[node.name], False, f"the routes to {node.name}'s pods to be withdrawn")


def _bgp_up(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    KubeRouter().start(state, node)
    others = [n for n in nodes if n.name != node.name]
    _await_routes(others, cidrs[node.name], True, f"the routes to {node.name}'s pods to be learned again")


class KubeRouter(Cni):
    name = "kube-router"
    builds = ("kube-router",)
    # Left out, each for a reason:
    #  egress-masquerade: kube-router masquerades pod egress itself (--enable-pod-egress,
    #    on by default), so removing the lab's PW-MASQ breaks nothing.
    #  policy-enforcer-down: the enforcer is the router; stopping it is bgp-down.
    #  cross-node-route-ipv6: kube-router runs IPv4 only here (--enable-ipv6=false,
    #    ip_families), so a dual-stack lab never runs on it. Were it dual, deleting
    #    its IPv6 route would not hold either: it re-adds the routes it learned by
    #    BGP on its next sync, which is why cross-node-route here is a firewall drop.
    # mtu-mismatch stays: pods get eth0's MTU (auto-mtu) and no tunnel (all nodes
    # share one subnet), the bridge CNI's shape.
    faults_supported = frozenset({
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "kube-proxy-broken", "cross-node-route", "nodeport-blocked", "nodeport-udp-blocked", "udp-dropped", "udp-lossy",
        "mtu-mismatch", "hairpin-off", "bgp-down"})
    fault_symptoms: ClassVar[dict[str, str]] = {
        "cross-node-route": "packets into one node's pod CIDR are dropped as they arrive: the other nodes "
                            "lose their way to its pods"}
    own_faults = (CniFault(
        "bgp-down", "kube-router stopped on one node: its BGP sessions close and the other nodes "
        "withdraw the routes to its pods", True, _bgp_down, _bgp_up),)

    def configure_node(self, node: t.Node, pod_cidr: str) -> None:
        """What the DaemonSet's install-cni init container does: its ConfigMap's
        conflist, unless the node has one already."""
        f = _conf(node)
        f.parent.mkdir(parents=True, exist_ok=True)
        if not f.exists():
            f.write_text(template(pod_cidr))

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str]) -> None:
        """Nothing: kube-router peers with the other nodes and learns their pod CIDRs."""

    def start(self, state: State, node: t.Node) -> None:
        if not any(p.name == AGENT and p.node == node.name and alive(p) for p in state.procs):
            start(state, node.name, AGENT, kube_router(node))

    def cut_off(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
        run(in_netns(node.name) + _pod_cidr_drop("-I", cidrs[node.name]), f"dropping pod traffic into {node.name}")

    def reconnect(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
        argv = in_netns(node.name) + _pod_cidr_drop("-D", cidrs[node.name])
        while subprocess.run(argv, capture_output=True, check=False).returncode == 0:
            pass  # every copy, should the fault have been injected twice

    def set_hairpin(self, nodes: list[t.Node], cidrs: dict[str, str], on: bool) -> None:
        for n in nodes:
            f = _conf(n)
            f.write_text(with_hairpin(f.read_text(), on))
            hairpin_ports(n, on, BRIDGE)

    def versions(self) -> str:
        return f"kube-router {versions.KUBE_ROUTER}, routing and NetworkPolicy"


CNI = KubeRouter()
