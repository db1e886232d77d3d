"""The verdict: the lowest failing layer, its scope, what is fine below it."""

from packetwalk.records import ProbeRecord
from packetwalk.verdict import for_failure, summarize


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
