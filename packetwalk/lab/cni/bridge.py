"""The bridge CNI: Debian's bridge + host-local + portmap plugins, a static
route per node between nodes (what kindnetd or flannel's host-gw would do),
and kube-router in firewall-only mode as the NetworkPolicy enforcer.
"""

from __future__ import annotations

import json
import subprocess

from .. import paths, versions
from .. import topology as t
from ..components import BIN, admin_kubeconfig
from ..network import ip
from ..processes import in_netns, run, start, stop_component
from ..state import State
from . import Cni

CONFLIST = "10-packetwalk.conflist"
BRIDGE = "cni0"
KUBE_ROUTER_CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")


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


def kube_router(node: t.Node) -> list[str]:
    # Firewall only: routing is the lab's job and Services are kube-proxy's.
    return [
        str(BIN / "kube-router"), f"--kubeconfig={admin_kubeconfig()}", f"--hostname-override={node.name}",
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        "--enable-ipv4=true", "--enable-ipv6=false", f"--service-cluster-ip-range={t.SERVICE_CIDR}",
        "--health-port=20244", "--v=1",
    ]


def route_pod_cidrs(nodes: list[t.Node], cidrs: dict[str, str]) -> None:
    """Routes to each node's pod CIDR via its node IP, in every other node and the host."""
    for n in nodes:
        for other in nodes:
            if other.name != n.name and other.name in cidrs:
                ip("route", "replace", cidrs[other.name], "via", str(other.ip), ns=n.name)
    for n in nodes:
        if n.name in cidrs:
            ip("route", "replace", cidrs[n.name], "via", str(n.ip))


def _write_conflist(node: t.Node, pod_cidr: str, hairpin: bool = True) -> None:
    netd = paths.cni_conf_dir(node.name)
    netd.mkdir(parents=True, exist_ok=True)
    (netd / CONFLIST).write_text(conflist(pod_cidr, hairpin=hairpin))


class Bridge(Cni):
    name = "bridge"
    builds = ("kube-router",)
    faults_supported = frozenset({
        "dns-down", "kube-proxy-broken", "cross-node-route", "egress-masquerade",
        "policy-enforcer-down", "nodeport-blocked", "udp-dropped", "mtu-mismatch", "hairpin-off"})

    def configure_node(self, node: t.Node, pod_cidr: str) -> None:
        _write_conflist(node, pod_cidr)

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str]) -> None:
        route_pod_cidrs(nodes, cidrs)

    def start(self, state: State, node: t.Node) -> None:
        start(state, node.name, "kube-router", kube_router(node))

    def stop(self, state: State, node: t.Node) -> None:
        stop_component(state, "kube-router", node.name)
        # `kube-router --cleanup-config` panics in v2.1.0; remove its chains as an admin would.
        saved = run(in_netns(node.name) + ["iptables-save", "-t", "filter"], "iptables-save")
        kept = [line for line in saved.splitlines() if not any(c in line for c in KUBE_ROUTER_CHAINS)]
        subprocess.run(in_netns(node.name) + ["iptables-restore", "-w"],
                       input="\n".join(kept) + "\n", text=True, check=True, capture_output=True)

    def set_hairpin(self, nodes: list[t.Node], cidrs: dict[str, str], on: bool) -> None:
        """The CNI config without hairpinMode, as on a cluster set up that way: new pods
        get it too. Existing pods' bridge ports are switched the same way."""
        for n in nodes:
            _write_conflist(n, cidrs[n.name], hairpin=on)
            for line in ip("-o", "link", "show", "master", BRIDGE, ns=n.name, check=False).splitlines():
                port = line.split(":")[1].strip().split("@")[0]
                run(in_netns(n.name) + ["bridge", "link", "set", "dev", port,
                     "hairpin", "on" if on else "off"], f"hairpin on {n.name}/{port}")

    def versions(self) -> str:
        return f"kube-router {versions.KUBE_ROUTER}"


CNI = Bridge()
