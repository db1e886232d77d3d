"""The lab is a real cluster: nodes, pods, Services, DNS, NetworkPolicy and egress NAT."""

import json

from packetwalk.lab import topology, versions

from .conftest import DENY_ALL, NS, eventually, exec_in, kubectl, kubectl_json


def test_every_node_ready_at_pinned_version(lab):
    nodes = kubectl_json("get", "nodes")["items"]
    assert len(nodes) >= 3
    for n in nodes:
        ready = {c["type"]: c["status"] for c in n["status"]["conditions"]}["Ready"]
        assert ready == "True", n["metadata"]["name"]
        assert n["status"]["nodeInfo"]["kubeletVersion"] == versions.KUBERNETES
        assert n["status"]["nodeInfo"]["containerRuntimeVersion"] == "containerd://" + versions.CONTAINERD.removeprefix("v")
    server = json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    assert server == versions.KUBERNETES


def test_a_pod_runs_on_each_worker(selftest):
    a, b = selftest["nodes"]
    assert a != b
    assert selftest["a"]["spec"]["nodeName"] == a and selftest["b"]["spec"]["nodeName"] == b
    for pod in (selftest["a"], selftest["b"]):
        assert pod["status"]["phase"] == "Running"
        assert topology.POD_CIDR.overlaps(__import__("ipaddress").ip_network(pod["status"]["podIP"]))


def test_pod_to_pod_across_nodes(selftest):
    target = selftest["a"]["status"]["podIP"]
    code, out = exec_in("server-b", "/agnhost", "connect", "--timeout=3s", f"{target}:8080")
    assert code == 0, out
    code, out = exec_in("server-b", "curl", "-s", "-m", "3", f"http://{target}:8080/hostname")
    assert out == "server-a"


def test_pod_to_cluster_ip(selftest):
    ip = kubectl_json("-n", NS, "get", "service", "server-a")["spec"]["clusterIP"]
    assert topology.SERVICE_CIDR.overlaps(__import__("ipaddress").ip_network(ip))
    # kube-proxy programs a new Service within its sync period: converge, then judge.
    ok, out = eventually(lambda: _answered(exec_in("server-b", "curl", "-s", "-m", "2", f"http://{ip}/hostname")),
                         timeout=15)
    assert ok, out


def _answered(result, expected="server-a"):
    code, out = result
    return (code, out) == (0, expected), out


def test_service_name_resolves_through_coredns(selftest):
    ip = kubectl_json("-n", NS, "get", "service", "server-a")["spec"]["clusterIP"]
    code, out = exec_in("server-b", "dig", "+short", "+time=2", f"server-a.{NS}.svc.cluster.local")
    assert (code, out) == (0, ip)
    code, out = exec_in("server-b", "cat", "/etc/resolv.conf")
    assert f"nameserver {topology.DNS_SERVICE_IP}" in out
    ok, out = eventually(lambda: _answered(exec_in("server-b", "curl", "-s", "-m", "2", "http://server-a/hostname")),
                         timeout=15)
    assert ok, out


ALLOW_B = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b-to-a}
spec:
  podSelector: {matchLabels: {side: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {side: b}}
"""


def test_network_policy_denies_then_allows(selftest):
    target = selftest["a"]["status"]["podIP"]

    def reach(pod):
        return exec_in(pod, "/agnhost", "connect", "--timeout=2s", f"{target}:8080")

    assert reach("server-b")[0] == 0
    kubectl("-n", NS, "apply", "-f", "-", stdin=DENY_ALL)
    try:
        blocked, out = eventually(lambda: (reach("server-b")[0] != 0, reach("server-b")[1]))
        assert blocked, "deny-all did not block server-b -> server-a"
        # kube-router rejects (REFUSED) where other enforcers drop (TIMEOUT); either is a block.
        assert out.split()[0] in ("TIMEOUT", "REFUSED"), out
        kubectl("-n", NS, "apply", "-f", "-", stdin=ALLOW_B)
        allowed, out = eventually(lambda: (reach("server-b")[0] == 0, reach("server-b")[1]))
        assert allowed, f"allow from side=b did not let server-b in: {out}"
    finally:
        kubectl("-n", NS, "delete", "networkpolicy", "--all")


def test_egress_to_outside_host_shows_node_ip(selftest):
    for side in ("a", "b"):
        pod = selftest[side]
        url = f"http://{topology.OUTSIDE_HOST_IP}:{topology.OUTSIDE_HTTP_PORT}/clientip"
        code, out = exec_in(pod["metadata"]["name"], "curl", "-s", "-m", "3", url)
        assert code == 0, out
        seen = out.rsplit(":", 1)[0]
        assert seen == pod["status"]["hostIP"], f"outside saw {seen}, pod {pod['status']['podIP']}"
