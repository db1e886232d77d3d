"""The verdict: the lowest failing layer, its scope, what is fine below it."""

from dataclasses import replace

from packetwalk.inventory import Service
from packetwalk.placement import Node
from packetwalk.records import ProbeRecord
from packetwalk.verdict import dialed_node, for_failure, summarize


def rec(hop, placement, protocol, ok, cls=None):
    return ProbeRecord(hop=hop, placement=placement, protocol=protocol, ok=ok,
                       cls=cls or ("OK" if ok else "TIMEOUT"), client_node="w1",
                       server_node="w2" if placement == "cross-node" else "w1")


def matrix(failing):
    records = []
    for hop in ("pod_ip", "cluster_ip", "dns_service_name"):
        for placement in ("same-node", "cross-node"):
            for protocol in ("tcp", "udp"):
                records.append(rec(hop, placement, protocol,
                                   (hop, placement, protocol) not in failing))
    return records


def test_all_fine():
    assert summarize(matrix(set())).startswith("all 12 probes as expected")


def test_service_translation_broken_podip_fine():
    failing = {("cluster_ip", p, "udp") for p in ("same-node", "cross-node")}
    failing |= {("dns_service_name", "same-node", "udp")}
    sentence = summarize(matrix(failing))
    assert sentence.startswith("Service translation (ClusterIP) is broken for udp only")
    assert "Fine: pod network (PodIP)" in sentence
    assert "Also failing, possibly as a consequence: cluster DNS" in sentence


def test_cross_node_only():
    failing = {("pod_ip", "cross-node", proto) for proto in ("tcp", "udp")}
    sentence = summarize(matrix(failing))
    assert sentence.startswith("pod network (PodIP) is broken across nodes only (w1 -> w2)")


def test_one_failure_in_words():
    text = for_failure(rec("cluster_ip", "cross-node", "udp", False, "REFUSED"))
    assert text.startswith("Service translation (ClusterIP) fails (udp) from w1 to w2: REFUSED")
    assert "kube-proxy" in text


def test_nothing_ran():
    assert summarize([]) == "no probe ran"


def test_confined_to_one_protocol_and_one_placement():
    records = [rec("pod_to_node", p, proto, not (p == "same-node" and proto == "udp"))
               for p in ("same-node", "cross-node") for proto in ("tcp", "udp")]
    assert summarize(records).startswith(
        "pod <-> node path is broken for udp only, within node w1 only (TIMEOUT)")


def test_every_placement_while_lower_and_higher_layers_pass():
    """The issue's example: ClusterIP fails everywhere, PodIP and DNS pass."""
    failing = {("cluster_ip", p, proto) for p in ("same-node", "cross-node")
               for proto in ("tcp", "udp")}
    sentence = summarize(matrix(failing))
    assert sentence.startswith("Service translation (ClusterIP) is broken on every placement "
                               "(TIMEOUT): look at kube-proxy")
    assert "Fine: pod network (PodIP)" in sentence
    assert "Passing above it: cluster DNS" in sentence


def test_errors_are_named_as_setup_not_network():
    sentence = summarize(matrix(set()), errors=2)
    assert sentence.startswith("all 12 probes as expected")
    assert sentence.endswith("2 tests could not probe (ERROR): setup, not the network; "
                             "see their pod events.")


def test_north_south_layer_is_named():
    records = matrix(set()) + [rec("egress_nat", "cross-node", None, False, "WRONG_SOURCE")]
    assert summarize(records).startswith("egress NAT is broken (WRONG_SOURCE): look at the "
                                         "nodes' masquerade")


# -- the node as the common factor -------------------------------------------
# The lab's placements: the client on pw-worker, the cross-node server on pw-worker2;
# a NodePort is dialed on the server's node or on the other one.
W1, W2 = Node("pw-worker", "10.250.0.11", "pw-worker"), Node("pw-worker2", "10.250.0.12", "pw-worker2")
NODE_PORTS = Service("server", "pw-1", "10.96.12.7", {"http": 80, "udp": 81},
                     {"http": 30080, "udp": 30081}, ("server",))
DIALED = {("node_port_server_node", "same-node"): W1, ("node_port_server_node", "cross-node"): W2,
          ("node_port_other_node", "same-node"): W2, ("node_port_other_node", "cross-node"): W1}


def node_port_run(broken):
    """The east-west matrix with the NodePort hops; `broken(node, protocol)`: that
    NodePort drops. The via is the walk's, worded by the inventory."""
    records = [replace(r, client_node=W1.name, src_node=W1.name,
                       server_node=W2.name if r.placement == "cross-node" else W1.name)
               for r in matrix(set())]
    for (hop, placement), node in DIALED.items():
        for protocol in ("tcp", "udp"):
            ok = not broken(node.name, protocol)
            records.append(ProbeRecord(
                hop=hop, placement=placement, protocol=protocol, ok=ok,
                cls="OK" if ok else "TIMEOUT", client_node=W1.name, src_node=W1.name,
                server_node=W2.name if placement == "cross-node" else W1.name,
                via=NODE_PORTS.node_port_target(node, protocol).via))
    return records


def test_the_dialed_node_is_read_off_the_target_the_walk_recorded():
    assert dialed_node(ProbeRecord(via=NODE_PORTS.node_port_target(W2, "udp").via)) == W2.name
    assert dialed_node(ProbeRecord(via=NODE_PORTS.target("udp").via)) == ""
    assert dialed_node(ProbeRecord(via="pod server-pw-worker2 on pw-worker2")) == ""


def test_udp_node_ports_dropped_on_one_node_blame_that_node():
    """Measured on the lab: [cross-node-udp] on the server's node and [same-node-udp] on
    the other one failed; the verdict said "on every placement"."""
    sentence = summarize(node_port_run(lambda node, proto: node == W2.name and proto == "udp"))
    assert sentence.startswith("NodePort is broken for udp only, only through pw-worker2 "
                               "(TIMEOUT): look at kube-proxy NodePort rules")
    assert "every placement" not in sentence


def test_node_ports_blocked_on_one_node_blame_that_node():
    sentence = summarize(node_port_run(lambda node, proto: node == W2.name))
    assert sentence.startswith("NodePort is broken only through pw-worker2 (TIMEOUT)")


def test_node_ports_failing_on_every_node_keep_every_placement():
    sentence = summarize(node_port_run(lambda node, proto: True))
    assert sentence.startswith("NodePort is broken on every placement (TIMEOUT)")


def test_node_ports_failing_through_several_nodes_name_them():
    # TCP through pw-worker and UDP through pw-worker2: each node also passed once.
    records = node_port_run(lambda node, proto: (node, proto) in {(W1.name, "tcp"),
                                                                   (W2.name, "udp")})
    assert summarize(records).startswith(
        "NodePort is broken through pw-worker and pw-worker2 (TIMEOUT)")


def test_a_passing_probe_through_the_node_clears_it():
    # Only [cross-node-udp] on the server's node fails; [same-node-udp] on the other
    # node dialed the same pw-worker2 and passed: pw-worker2 alone is not the cause.
    records = [r for r in node_port_run(lambda node, proto: False)]
    records = [replace(r, ok=False, cls="TIMEOUT")
               if (r.hop, r.placement, r.protocol) == ("node_port_server_node", "cross-node", "udp")
               else r for r in records]
    sentence = summarize(records)
    assert "only through" not in sentence
    assert sentence.startswith("NodePort is broken for udp only, across nodes only "
                               "(pw-worker -> pw-worker2) (TIMEOUT)")


def test_a_cross_node_path_to_one_node_names_that_pair():
    """Two nodes: the client's node also serves the same-node probes that pass."""
    records = [replace(r, client_node=W1.name,
                       server_node=W2.name if r.placement == "cross-node" else W1.name)
               for r in matrix({("pod_ip", "cross-node", p) for p in ("tcp", "udp")})]
    assert summarize(records).startswith(
        "pod network (PodIP) is broken across nodes only (pw-worker -> pw-worker2) (TIMEOUT)")


def test_pod_paths_failing_on_every_placement_through_one_node_blame_it():
    """Records from several node pairs: every failure is to or from w3, every other
    pair passes; "on every placement" would hide the one node."""
    def pod(placement, client, server, ok):
        return ProbeRecord(hop="pod_ip", placement=placement, protocol="tcp", ok=ok,
                           cls="OK" if ok else "TIMEOUT", client_node=client, server_node=server)
    records = [pod("same-node", "w1", "w1", True), pod("cross-node", "w1", "w2", True),
               pod("same-node", "w3", "w3", False), pod("cross-node", "w1", "w3", False)]
    assert summarize(records).startswith("pod network (PodIP) is broken only to/from w3 (TIMEOUT)")
    # Every pair through w1 failing too: w1 also passed, w3 did not; still w3 alone.
    records.append(pod("cross-node", "w3", "w1", False))
    assert summarize(records).startswith("pod network (PodIP) is broken only to/from w3")
    # A pair without w3 failing as well: no one node in common, the old wording.
    records.append(pod("cross-node", "w2", "w1", False))
    assert summarize(records).startswith("pod network (PodIP) is broken on every placement")


def test_one_node_port_failure_names_the_node_dialed_not_the_clients():
    record = ProbeRecord(hop="node_port_other_node", placement="same-node", protocol="udp",
                         ok=False, cls="TIMEOUT", client_node=W1.name, server_node=W1.name,
                         via=NODE_PORTS.node_port_target(W2, "udp").via)
    assert for_failure(record).startswith("NodePort fails (udp) through pw-worker2: TIMEOUT; "
                                          "look at kube-proxy NodePort rules")


def test_one_cross_node_failure_names_the_servers_node():
    record = replace(rec("pod_ip", "cross-node", "tcp", False), client_node=W1.name,
                     server_node=W2.name)
    assert for_failure(record).startswith(
        "pod network (PodIP) fails (tcp) from pw-worker to pw-worker2: TIMEOUT")


def test_blocked_tests_are_listed_under_the_layer_that_blocks_them():
    from packetwalk.verdict import BlockedTest

    failing = {("cluster_ip", p, proto) for p in ("same-node", "cross-node")
               for proto in ("tcp", "udp")}
    records = [r for r in matrix(failing) if r.hop != "dns_service_name"]
    blocked = [BlockedTest("test_dns_headless[udp]", "cluster DNS", "Service translation (ClusterIP)"),
               BlockedTest("test_hairpin[udp]", "hairpin", "Service translation (ClusterIP)"),
               BlockedTest("test_mtu[cross-node-udp]", "path MTU", "pod network (PodIP)")]
    sentence = summarize(records, errors=1, blocked=blocked)
    assert sentence.startswith("Service translation (ClusterIP) is broken on every placement")
    assert (". Blocked by pod network (PodIP) (not failed; what they stand on fails): "
            "path MTU (1 test). Blocked by it (not failed; what they stand on fails): "
            "hairpin (1 test), cluster DNS (1 test).") in sentence
    assert sentence.endswith("1 test could not probe (ERROR): setup, not the network; "
                             "see their pod events.")


def test_only_blocked_tests_still_name_the_layer_below():
    from packetwalk.verdict import BlockedTest

    blocked = [BlockedTest("test_dns_headless[udp]", "cluster DNS", "Service translation (ClusterIP)")]
    assert summarize([], blocked=blocked).startswith(
        "Service translation (ClusterIP) is broken (seen by the narrowing of the tests it "
        "blocks; its own tests did not fail here). Blocked by it")


def test_a_layer_whose_failures_are_all_flaky_reads_flaky_with_its_attempts():
    # pod_ip udp read 9 of 20 and 10 of 20 attempts failed under udp-lossy (issue 13).
    def attempted(placement, failed):
        classes = ("TIMEOUT",) * failed + ("OK",) * (20 - failed)
        return replace(rec("pod_ip", placement, "udp", False), attempt_classes=classes,
                       attempt_seconds=(1.0,) * 20, expected=("OK",))

    records = [r for r in matrix(set()) if not (r.hop == "pod_ip" and r.protocol == "udp")]
    records += [attempted("same-node", 9), attempted("cross-node", 10)]
    sentence = summarize(records)
    assert sentence.startswith("pod network (PodIP) is flaky for udp only, on every placement "
                               "(TIMEOUT; 19 of 40 attempts failed): look at"), sentence
    # One of them down in every attempt: the layer is broken, as before.
    records[-1] = attempted("cross-node", 20)
    assert summarize(records).startswith("pod network (PodIP) is broken for udp only")
