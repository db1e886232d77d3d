"""`packetwalk lab up --cni flannel`: flanneld's VXLAN network on every node, no
routes written between nodes, pods at the node MTU less VXLAN's 50 bytes, and
every suite green on it, and a few of the self-check's faults localized on it exactly
as tests/selfcheck asserts on the bridge (bench/matrix.py runs them all: CI's time
allows the cheap ones). One up; the default lab comes back after.
"""

import json
import os
import string
from ipaddress import IPv4Network, ip_address

import pytest

from packetwalk.lab import cluster, faults, network, state, topology, versions
from packetwalk.lab.cni import flannel
from packetwalk.lab.processes import enter, in_netns, run
from tests.lab.conftest import HEALTHY_SKIPS, hand_on
from tests.lab.conftest import lab_cli as cli
from tests.selfcheck.expected import SUITES, expected_on, mismatches
from tests.suiterun import run_suites

NS = "pw-flanneltest"
# The cheapest fault on this network (about 45 s a run on kube-router/nftables): CoreDNS
# gone. flanneld-down takes 352 s; the matrix runs every fault on flannel (CI's time).
SMOKE_FAULTS = ("dns-down",)
POD = """
apiVersion: v1
kind: Pod
metadata: {name: mtu-$NODE}
spec:
  nodeName: $NODE
  containers:
  - {name: c, image: AGNHOST, args: [pause]}
""".replace("AGNHOST", versions.AGNHOST_IMAGE)


# Takes the lab down and brings another network up: runs last.
pytestmark = pytest.mark.switches_lab


def node_mtu(node: str) -> int:
    words = network.ip("-o", "link", "show", "eth0", ns=node).split()
    return int(words[words.index("mtu") + 1])


def check_node(node: topology.Node, cidr: str, lab_nodes: list[topology.Node]) -> None:
    vxlan = network.ip("-d", "link", "show", flannel.VXLAN_DEVICE, ns=node.name)
    assert all(w in vxlan for w in ("vxlan id 1 ", f"local {node.ip} ", "dev eth0 ", "dstport 8472 ")), vxlan
    # subnet.env is in the node's own mount namespace, not the host's.
    env = flannel.parse_subnet_env(run(enter(node.name) + ["cat", flannel.SUBNET_ENV], "cat subnet.env"))
    assert (env.network, str(env.subnet.network), env.mtu, env.ipmasq) == (
        topology.POD_CIDR, cidr, node_mtu(node.name) - 50, True)
    assert not os.path.exists(flannel.SUBNET_ENV), "subnet.env leaked into the host's /run"
    others = [n for n in lab_nodes if n.name != node.name]
    # Routes to the other nodes' pods are learned (via flannel.1), never written via node IPs.
    for line in network.ip("-4", "route", "show", ns=node.name).splitlines():
        dst = line.split()[0]
        if dst != "default" and IPv4Network(dst).subnet_of(topology.POD_CIDR) and dst != cidr:
            assert f"dev {flannel.VXLAN_DEVICE}" in line, f"{node.name}: {line}"
            assert not any(f"via {n.ip} " in line + " " for n in lab_nodes), f"{node.name}: {line}"
    fdb = run(in_netns(node.name) + ["bridge", "fdb", "show", "dev", flannel.VXLAN_DEVICE], "bridge fdb")
    assert {str(n.ip) for n in others} <= {w for line in fdb.splitlines() for w in line.split()}, fdb


@pytest.mark.skipif(os.geteuid() != 0, reason="the lab tests need root")
def test_flannel_lab_is_a_green_network(tmp_path, request):
    try:
        cluster.down(log=lambda m: None)
        up = cli("up", "--cni", "flannel")
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        lab_nodes = cluster.node_list(2)
        items = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
        assert len(items) == 3 and all(
            {c["type"]: c["status"] for c in i["status"]["conditions"]}["Ready"] == "True" for i in items)
        status = cli("status").stdout
        assert f"CNI: flannel (flanneld {versions.FLANNEL}, kube-router {versions.KUBE_ROUTER})" in status, status

        # Another CNI while this one runs: one line saying how to switch, nothing changed.
        procs = [(p.name, p.node, p.pid) for p in state.load().procs]
        other = cli("up")
        assert other.returncode == 1 and other.stderr == (
            "packetwalk: the lab runs the flannel CNI; to switch to bridge: `packetwalk lab down`, "
            "then `packetwalk lab up --cni bridge`\n"), other.stderr
        assert [(p.name, p.node, p.pid) for p in state.load().procs] == procs

        cidrs = cluster.pod_cidrs()
        for i in items:
            notes = i["metadata"]["annotations"]
            node = next(n for n in lab_nodes if n.name == i["metadata"]["name"])
            assert notes["flannel.alpha.coreos.com/backend-type"] == "vxlan", notes
            assert ip_address(notes["flannel.alpha.coreos.com/public-ip"]) == node.ip, notes
        for n in lab_nodes:
            check_node(n, cidrs[n.name], lab_nodes)

        cluster.kubectl("create", "namespace", NS)
        workers = [n for n in lab_nodes if not n.control_plane]
        for n in workers:
            cluster.kubectl("-n", NS, "apply", "-f", "-", stdin=string.Template(POD).substitute(NODE=n.name))
        cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s", timeout=100)
        for n in workers:
            mtu = cluster.kubectl("-n", NS, "exec", f"mtu-{n.name}", "--", "cat", "/sys/class/net/eth0/mtu")
            assert int(mtu) == node_mtu(n.name) - 50, f"pod on {n.name}: MTU {mtu.strip()}"
        cluster.kubectl("delete", "namespace", NS, "--wait=false")

        suites = run_suites(tmp_path, "suites")
        assert suites.passed and not suites.failed and not suites.errors, suites.output[-3000:]
        assert set(suites.skipped) <= HEALTHY_SKIPS, suites.skipped

        for name in SMOKE_FAULTS:
            expected = expected_on("flannel", name)
            assert name in flannel.CNI.faults_supported, name
            faults.inject(name, expected.node)
            try:
                broken = run_suites(tmp_path / name, *SUITES, extra=("--policy-timeout", "8"),
                                    timeout=900)
            finally:
                faults.heal()
            wrong = mismatches(expected, broken.failed, broken.error_texts)
            assert not wrong, f"{name} on flannel: {wrong}\n{broken.verdict}"
            assert expected.verdict in broken.verdict, f"{name} on flannel: {broken.verdict!r}"
    finally:
        hand_on(request.config)
