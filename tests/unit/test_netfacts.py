"""The network's facts as the cluster shows them (packetwalk/netfacts.py): pure decisions."""

from packetwalk.netfacts import (
    NO_AGENT,
    Agent,
    NodeEvidence,
    agents_from_node,
    agents_from_workloads,
    conflist_types,
    describe_cni,
    image_version,
    mtu_of_link,
    parse_links,
    parse_node_probe,
    pod_mtu_from_node,
    proxy_mode_from_endpoint,
    proxy_mode_line,
)

LINKS = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 1a:2b:3c:4d:5e:6f brd ff:ff:ff:ff:ff:ff link-netnsid 0
3: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN mode DEFAULT group default \\    link/ether 22:33:44:55:66:77 brd ff:ff:ff:ff:ff:ff
4: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 33:44:55:66:77:88 brd ff:ff:ff:ff:ff:ff
5: veth1a2b3c4d@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 state UP mode DEFAULT group default \\    link/ether 44:55:66:77:88:99 brd ff:ff:ff:ff:ff:ff link-netns cni-1234
"""


def probe(links: str = LINKS, routes: str = "", mode: str = "iptables", health: str = "000",
          metrics: str = "") -> str:
    return (f"@@ links\n{links}@@ routes\n{routes}\n@@ proxymode\n{mode}\n@@ kube-router-health\n{health}\n"
            f"@@ kube-router-metrics\n{metrics}\n")


def test_image_tags_are_versions():
    assert image_version("docker.io/flannel/flannel:v0.28.4") == "v0.28.4"
    assert image_version("registry:5000/cloudnativelabs/kube-router:v2.1.0@sha256:abc") == "v2.1.0"
    assert image_version("registry:5000/calico/node") is None


def test_agents_from_kube_system_workloads():
    found = agents_from_workloads([
        ("coredns", ["registry.k8s.io/coredns/coredns:v1.14.6"]),
        ("kube-flannel-ds", ["docker.io/flannel/flannel:v0.28.4", "docker.io/flannel/flannel-cni-plugin:v1.7"]),
        ("kube-flannel-ds-abcde", ["docker.io/flannel/flannel:v0.28.4"]),
        ("kube-router", ["docker.io/cloudnativelabs/kube-router:v2.1.0"]),
        ("calico-node", []),
    ])
    assert found == [Agent("flannel", "v0.28.4"), Agent("kube-router", "v2.1.0"), Agent("calico")]
    assert describe_cni(found[:1]) == "flannel (v0.28.4)"


def test_links_and_the_pods_mtu_on_a_node():
    links = parse_links(LINKS)
    assert [name for name, _, _ in links] == ["lo", "eth0", "flannel.1", "cni0", "veth1a2b3c4d"]
    assert links[-1] == ("veth1a2b3c4d", 1450, "cni0")
    assert pod_mtu_from_node(links) == 1450
    assert pod_mtu_from_node(links[:-1]) is None  # no pod on the node: no answer, not a guess


def test_the_pods_mtu_on_a_node_that_routes_its_pods():
    """Cilium's host ends are lxc<hash> with no master (`lab status` read "unknown (no
    pod runs on ...)" on the cilium lab with CoreDNS on both workers); its health
    endpoint is not a pod, and neither is cilium_host."""
    links = parse_links(
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
        "2: cilium_net@cilium_host: <BROADCAST,MULTICAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue\n"
        "3: cilium_host@cilium_net: <BROADCAST,MULTICAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue\n"
        "4: lxc_health@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000 qdisc noqueue\n"
        "6: lxc3f2a9b1c@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue\n")
    assert pod_mtu_from_node(links) == 1500
    assert pod_mtu_from_node(links[:4]) is None


def test_flannel_on_the_nodes_with_kube_router_for_policy():
    evidence = parse_node_probe(probe(health="200"))
    agents = agents_from_node(evidence, {"flannel.alpha.coreos.com/backend-type": "vxlan"})
    assert describe_cni(agents) == "flannel (vxlan); NetworkPolicy by kube-router"
    assert evidence.proxy_mode == "iptables"


def test_kube_router_routing_is_told_by_its_bridge_or_its_routes():
    metrics = 'kube_router_build_info{goversion="go1.26.0",version="v2.1.0"} 1'
    routes = "10.244.2.0/24 via 10.250.0.12 dev eth0 proto 17"
    evidence = parse_node_probe(probe(links="", routes=routes, mode="nftables", health="200", metrics=metrics))
    assert evidence.kube_router_version == "v2.1.0" and evidence.proxy_mode == "nftables"
    assert describe_cni(agents_from_node(evidence, {})) == "kube-router (v2.1.0)"
    bridge_only = NodeEvidence(links=[("kube-bridge", 1500, "")])
    assert describe_cni(agents_from_node(bridge_only, {})) == "kube-router"


def test_no_agent_is_said_with_the_cni_config_when_readable():
    evidence = parse_node_probe(probe(links="", health="200"))
    conflist = ('{"plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, '
                '{"type": "portmap"}]}')
    assert describe_cni(agents_from_node(evidence, {}), conflist_types(conflist)) == (
        f"{NO_AGENT}; CNI config: bridge + host-local + portmap; NetworkPolicy by kube-router")
    assert describe_cni([]) == NO_AGENT == "unknown (no CNI agent found)"


def test_proxy_mode_endpoint_and_pod_mtu():
    assert proxy_mode_from_endpoint("nftables\n") == "nftables"
    assert proxy_mode_from_endpoint("") is None
    assert proxy_mode_from_endpoint("404 page not found") is None
    assert mtu_of_link("2: eth0@if9: <BROADCAST,UP> mtu 1450 qdisc noqueue state UP") == 1450
    assert mtu_of_link("Device \"eth0\" does not exist.") is None


def test_an_empty_probe_tells_nothing():
    evidence = parse_node_probe("")
    assert evidence == NodeEvidence()
    assert agents_from_node(evidence, {}) == []


def test_the_reports_network_facts_say_where_each_came_from():
    from packetwalk.report.facts import network_facts

    flannel = ("pw-worker", probe(health="200"))
    facts = network_facts([], {"flannel.alpha.coreos.com/backend-type": "vxlan"}, flannel,
                          ("pw-worker", "2: eth0@if9: <UP> mtu 1450 qdisc noqueue"), None)
    assert facts == {
        "CNI": "flannel (vxlan); NetworkPolicy by kube-router; seen on the nodes, no CNI agent pod (pw-worker)",
        "kube-proxy mode": "iptables (kube-proxy's /proxyMode on pw-worker)",
        "Pod MTU": "1450 (eth0 of a pod on pw-worker)"}
    # Agent pods win over what a node shows; without a client pod the node's veths tell the MTU.
    pods = [("kube-flannel-ds", ["docker.io/flannel/flannel:v0.28.10"])]
    facts = network_facts(pods, {}, flannel, None, None)
    assert facts["CNI"] == "flannel (v0.28.10); from kube-system's DaemonSets"
    assert facts["Pod MTU"] == "1450 (the pods' veths on pw-worker)"
    # Nothing to ask (no hostNetwork pod): the CNI config the lab can read, else unknown.
    assert network_facts([], {}, None, None, "bridge + host-local") == {
        "CNI": f"{NO_AGENT}; CNI config: bridge + host-local", "Pod MTU": "unknown"}


CILIUM_LINKS = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT\n"
    "4: cilium_host@cilium_net: <BROADCAST,MULTICAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\n")
CILIUM_PODS = [("cilium", ["quay.io/cilium/cilium:v1.20.2"]),
               ("cilium-operator", ["quay.io/cilium/operator-generic:v1.20.2"])]


def test_kube_proxy_mode_when_kube_proxy_answers_on_every_node():
    from packetwalk.report.facts import network_facts

    answers = {"pw-worker": "nftables", "pw-worker2": "nftables"}
    # A CNI that could replace kube-proxy does not, where kube-proxy answers.
    assert proxy_mode_line(answers, [Agent("cilium", "v1.20.2")]) == (
        "nftables (kube-proxy's /proxyMode on pw-worker, pw-worker2)")
    facts = network_facts(CILIUM_PODS, {}, ("pw-worker", probe(links=CILIUM_LINKS, mode="iptables")), None, None)
    assert facts["kube-proxy mode"] == "iptables (kube-proxy's /proxyMode on pw-worker)"


def test_no_kube_proxy_with_cilium_is_none_services_translated_by_cilium():
    from packetwalk.report.facts import network_facts

    answers = {"pw-worker": None, "pw-worker2": None}
    expected = "none (no kube-proxy; Services translated by cilium)"
    assert proxy_mode_line(answers, agents_from_workloads(CILIUM_PODS)) == expected
    # Cilium seen on the node only (no agent pod: the lab), and from its DaemonSet.
    on_node = parse_node_probe(probe(links=CILIUM_LINKS, mode=""))
    assert proxy_mode_line(answers, agents_from_node(on_node, {})) == expected
    for workloads in ([], CILIUM_PODS):
        facts = network_facts(workloads, {}, ("pw-worker", probe(links=CILIUM_LINKS, mode="")), None, None)
        assert facts["kube-proxy mode"] == expected
    # One node's kube-proxy answering is a kube-proxy: the others read unknown, not none.
    assert proxy_mode_line({"pw-worker": "iptables", "pw-worker2": None}, agents_from_workloads(CILIUM_PODS)) == (
        "iptables, unknown (kube-proxy's /proxyMode on pw-worker, pw-worker2)")
    # A kube-proxy pod (another metrics address) or no node asked: not "none".
    kube_proxy = [*CILIUM_PODS, ("kube-proxy-x7k2p", ["registry.k8s.io/kube-proxy:v1.37.2"])]
    assert "kube-proxy mode" not in network_facts(
        kube_proxy, {}, ("pw-worker", probe(links=CILIUM_LINKS, mode="")), None, None)
    assert "kube-proxy mode" not in network_facts(CILIUM_PODS, {}, None, None, None)
    assert proxy_mode_line({}, agents_from_workloads(CILIUM_PODS)) == "unknown (kube-proxy's /proxyMode on no node)"


def test_no_kube_proxy_with_another_cni_stays_unknown_with_why():
    from packetwalk.report.facts import network_facts

    answers = {"pw-worker": None, "pw-worker2": None}
    flannel = [Agent("flannel", "v0.28.4"), Agent("kube-router", "v2.1.0", policy_only=True)]
    assert proxy_mode_line(answers, flannel) == "unknown (kube-proxy's /proxyMode on pw-worker, pw-worker2)"
    assert proxy_mode_line(answers, []) == "unknown (kube-proxy's /proxyMode on pw-worker, pw-worker2)"
    # The report leaves it to the ConfigMap, the pods' flags, the lab's rules, else "unknown".
    assert "kube-proxy mode" not in network_facts([], {}, ("pw-worker", probe(mode="")), None, None)
