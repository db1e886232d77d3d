"""`packetwalk lab up --cni kube-router --proxy-mode nftables`: kube-router routes
the pod CIDRs itself (BGP, no route written by the lab), kube-proxy keeps its
Services in nftables (no iptables Service chains), `lab status` tells both as
the cluster shows them, every suite is green, and bgp-down withdraws and heal
brings back one node's routes. One up and one suite run; the default lab
comes back after.
"""

import json
import os
from ipaddress import IPv4Network

import pytest

from packetwalk.lab import cluster, faults, network, paths, state, topology, versions
from packetwalk.lab.cni import kube_router
from packetwalk.lab.processes import in_netns, run
from tests.lab.conftest import HEALTHY_SKIPS, hand_on
from tests.lab.conftest import lab_cli as cli
from tests.suiterun import FULL_MATRIX, run_suites

# CI runs the default network in full and flannel as its second network; kube-router
# with nftables is the matrix's (bench/matrix.py), or on demand with this variable.
pytestmark = [pytest.mark.switches_lab, pytest.mark.skipif(
    not FULL_MATRIX,
    reason="kube-router + nftables runs in the full matrix (bench/matrix.py, or "
           "PACKETWALK_FULL_MATRIX=1 for this test); CI covers bridge and flannel")]


def pod_routes(node: str) -> dict[str, str]:
    """{pod CIDR of another node: its route line} in the node's main table."""
    found = {}
    for line in network.ip("-4", "route", "show", ns=node).splitlines():
        dst = line.split()[0]
        if dst != "default" and IPv4Network(dst).subnet_of(topology.POD_CIDR) and "dev kube-bridge" not in line:
            found[dst] = line
    return found


def check_node(node: topology.Node, cidrs: dict[str, str], lab_nodes: list[topology.Node]) -> None:
    # Every other node's pod CIDR is routed via that node, and only because BGP taught it.
    others = {cidrs[n.name]: n for n in lab_nodes if n.name != node.name}
    routes = pod_routes(node.name)
    assert set(routes) == set(others), f"{node.name}: {routes}"
    learned = kube_router.learned_routes("\n".join(routes.values()))
    assert set(learned) == set(others), f"{node.name}: not learned: {routes}"
    for cidr, peer in others.items():
        assert f"via {peer.ip} dev eth0" in routes[cidr], routes[cidr]
    assert "kube-bridge" in network.ip("-o", "link", "show", ns=node.name)
    # kube-router kept the node's CIDR in its CNI config and set the MTU from eth0 (auto-mtu).
    conf = json.loads((paths.cni_conf_dir(node.name) / kube_router.CONFLIST).read_text())
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": cidrs[node.name]}]], bridge
    assert bridge["mtu"] == 1500, bridge
    # kube-proxy in nftables mode: its table, and none of its iptables Service chains.
    table = run(in_netns(node.name) + ["nft", "list", "table", "ip", "kube-proxy"], "nft list table")
    assert "map service-ips" in table and f"{topology.KUBERNETES_SERVICE_IP} . tcp . 443" in table, table[:2000]
    nat = run(in_netns(node.name) + ["iptables-save", "-t", "nat"], "iptables-save")
    assert ":KUBE-SERVICES" not in nat and "KUBE-SVC-" not in nat, nat[:2000]


@pytest.mark.skipif(os.geteuid() != 0, reason="the lab tests need root")
def test_kube_router_with_nftables_kube_proxy_is_a_green_network(tmp_path, request):
    try:
        cluster.down(log=lambda m: None)
        up = cli("up", "--cni", "kube-router", "--proxy-mode", "nftables")
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        lab_nodes = cluster.node_list(2)
        items = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
        assert len(items) == 3 and all(
            {c["type"]: c["status"] for c in i["status"]["conditions"]}["Ready"] == "True" for i in items)

        # The same CNI with the other proxy mode: one line saying how to switch, nothing changed.
        procs = [(p.name, p.node, p.pid) for p in state.load().procs]
        other = cli("up", "--cni", "kube-router")
        assert other.returncode == 1 and other.stderr == (
            "packetwalk: the lab's kube-proxy runs in nftables mode; to switch to iptables: "
            "`packetwalk lab down`, then `packetwalk lab up --cni kube-router --proxy-mode iptables`\n"), \
            other.stderr
        assert [(p.name, p.node, p.pid) for p in state.load().procs] == procs

        cidrs = cluster.pod_cidrs()
        for n in lab_nodes:
            check_node(n, cidrs, lab_nodes)

        # Status: what the lab configured, then what the cluster itself shows.
        status = cli("status").stdout
        assert f"CNI: kube-router (kube-router {versions.KUBE_ROUTER}, routing and NetworkPolicy)" in status
        assert "kube-proxy: nftables mode" in status
        assert f"  CNI: kube-router ({versions.KUBE_ROUTER}); seen on the nodes, no CNI agent pod" in status, status
        assert ("  kube-proxy mode: nftables (kube-proxy's /proxyMode on pw-control-plane, pw-worker, "
                "pw-worker2)") in status, status
        assert "  pod MTU: 1500 (the pods' veths on pw-" in status, status  # CoreDNS's, at least

        suites = run_suites(tmp_path, "suites")
        assert suites.passed and not suites.failed and not suites.errors, suites.output[-3000:]
        assert set(suites.skipped) <= HEALTHY_SKIPS, suites.skipped

        # bgp-down: the other nodes lose the routes to pw-worker2's pods, and get them back.
        second = next(n for n in lab_nodes if n.name == "pw-worker2")
        assert faults.inject("bgp-down", second.name).startswith("bgp-down: kube-router stopped")
        for n in lab_nodes:
            if n.name != second.name:
                assert cidrs[second.name] not in pod_routes(n.name), (n.name, pod_routes(n.name))
        assert faults.heal() == ["bgp-down"]
        for n in lab_nodes:
            check_node(n, cidrs, lab_nodes)
    finally:
        faults.heal()
        hand_on(request.config)
