"""Failed or blocked (packetwalk/diagnose/blocking.py): the issue's four examples and
their counterparts, where the test's own layer is the one at fault."""

import pytest

from packetwalk.diagnose import narrowing as nw
from packetwalk.diagnose.blocking import (
    CROSS_NODE,
    FAILED,
    SAME_NODE,
    Findings,
    Seen,
    decide,
    decide_baseline,
)
from packetwalk.hops import HOPS, PATH_MTU, POD_NETWORK, SERVICE, preconditions


def seen(kind, change, ok, placement=CROSS_NODE, protocol="tcp"):
    return Seen(kind, change, ok, placement, protocol,
                f"{kind} from client-pw-worker ({change}): {'OK' if ok else 'TIMEOUT'}")


# ---------------------------------------------------------------- the catalogue

def test_every_hop_stands_on_hops_of_the_catalogue_at_or_below_its_layer():
    """Or on its reach layer: the source IP through a ClusterIP ranks below Services in
    the walk, yet its probe goes through one (hops.Hop.reach_layer)."""
    for hop in HOPS.values():
        for name in hop.stands_on:
            assert name in HOPS, (hop.name, name)
            below = HOPS[name].layer
            assert below.rank <= hop.layer.rank or below == hop.reach_layer, (hop.name, name)
        assert hop.name not in preconditions(hop.name), hop.name


def test_preconditions_are_the_issues_and_followed_down():
    assert preconditions("mtu") == ("pod_ip",)
    assert preconditions("dns_service_name") == ("cluster_ip", "pod_ip")
    assert preconditions("node_port_server_node") == ("cluster_ip", "pod_ip")
    assert set(preconditions("network_policy")) == {"pod_ip", "cluster_ip", "dns_service_name"}
    # A direct question to each DNS pod needs no Service.
    assert "cluster_ip" not in preconditions("dns_every_backend")
    # The bottom, and a hop that expects no answer, stand on nothing.
    assert preconditions("pod_ip") == ()
    assert preconditions("node_port_external_local_no_backend") == ()


# ---------------------------------------------------------------- 1. MTU under cross-node-route

MTU = Findings(nw.POD_IP, "TIMEOUT", "udp", CROSS_NODE)


def test_mtu_is_blocked_when_the_small_request_fails_too():
    found = decide(HOPS["mtu"], Findings(
        nw.POD_IP, "TIMEOUT", "udp", CROSS_NODE,
        (seen(nw.POD_IP, nw.SMALL, False, CROSS_NODE, "udp"),)))
    assert found.layer == POD_NETWORK
    assert found.test_id == "test_pod_ip[cross-node-udp]"
    assert found.line().startswith(
        "blocked: the pod network (PodIP) across nodes fails (test_pod_ip[cross-node-udp]): "
        "a small request fails too")


def test_mtu_fails_on_its_own_when_the_small_request_answers():
    assert decide(HOPS["mtu"], Findings(
        nw.POD_IP, "TIMEOUT", "udp", CROSS_NODE,
        (seen(nw.POD_IP, nw.SMALL, True, CROSS_NODE, "udp"),))) is FAILED
    assert HOPS["mtu"].layer == PATH_MTU


def test_without_a_narrowing_nothing_was_seen_below():
    assert decide(HOPS["mtu"], None) is FAILED


# ---------------------------------------------------------------- 2. DNS under kube-proxy-broken

def test_a_lookup_through_the_dns_service_is_blocked_when_every_dns_pod_answers_directly():
    findings = Findings(nw.NAME, "TIMEOUT", "udp", "",
                        (seen(nw.CLUSTER_IP, "", False, "", "tcp"), seen(nw.POD_IP, "", True)),
                        dns_servers_answer=True)
    found = decide(HOPS["dns_service_name"], findings)
    assert found.layer == SERVICE
    assert found.line().startswith("blocked: the Service translation (ClusterIP)")
    assert decide(HOPS["dns_headless"], findings).layer == SERVICE
    # The DNS Service's own ClusterIP, seen failing while its pods answer.
    only_dns = Findings(nw.NAME, "TIMEOUT", "udp", "", dns_servers_answer=True)
    assert decide(HOPS["dns_service_name"], only_dns).test_id == "test_cluster_ip[same-node-udp]"


def test_dns_fails_on_its_own_when_its_pods_do_not_answer_or_are_gone():
    # dns-down: no DNS pod to ask, the looked-up Service answers by its ClusterIP.
    down = Findings(nw.NAME, "TIMEOUT", "udp", "",
                    (seen(nw.CLUSTER_IP, "", True), seen(nw.POD_IP, "", True)))
    assert decide(HOPS["dns_service_name"], down) is FAILED
    # dns-policy: the DNS pods refuse, the run's pods beside them answer.
    refused = Findings(nw.NAME, "REFUSED", "udp", "",
                       (seen(nw.DNS_SERVER, "", False), seen(nw.POD_IP, nw.DNS_NODE, True),
                        seen(nw.POD_IP, nw.DNS_NODE_TRANSPORT, True, protocol="udp")),
                       dns_servers_answer=False)
    assert decide(HOPS["dns_service_name"], refused) is FAILED
    assert decide(HOPS["dns_every_backend"], refused) is FAILED


def test_asking_a_dns_pod_directly_needs_no_service_only_the_path_to_it():
    direct = Findings(nw.NAME, "TIMEOUT", "udp", "",
                      (seen(nw.DNS_SERVER, "", False), seen(nw.POD_IP, nw.DNS_NODE, False)))
    assert decide(HOPS["dns_every_backend"], direct).test_id == "test_pod_ip[cross-node-tcp]"


# ---------------------------------------------------------------- 3. policy under dns-down

def test_a_policy_cell_failing_with_no_policy_is_blocked_by_the_layer_of_its_target():
    found = decide_baseline(HOPS["network_policy"], None, nw.NAME, CROSS_NODE, "udp",
                            "client-b -> dns:http")
    assert found.line() == ("blocked: the cluster DNS across nodes fails "
                            "(test_dns_service_name[short-udp]): the cell client-b -> dns:http "
                            "fails with no policy applied")
    by_pod = decide_baseline(HOPS["network_policy"], None, nw.POD_IP, CROSS_NODE, "tcp",
                             "client-a -> pod-ip:http")
    assert by_pod.test_id == "test_pod_ip[cross-node-tcp]"


def test_a_policy_cell_names_the_lowest_layer_the_narrowing_saw():
    # kube-proxy-broken: the name's lookup goes through the DNS Service, which fails.
    findings = Findings(nw.NAME, "TIMEOUT", "udp", CROSS_NODE, dns_servers_answer=True)
    assert decide_baseline(HOPS["network_policy"], findings, nw.NAME, CROSS_NODE, "udp",
                           "client-b -> dns:http").layer == SERVICE


# ---------------------------------------------------------------- 4. policy under udp-dropped

def test_a_policy_cell_resolving_over_udp_is_blocked_by_udp_on_the_pod_network():
    findings = Findings(nw.NAME, "TIMEOUT", "udp", CROSS_NODE, (
        seen(nw.CLUSTER_IP, "", True), seen(nw.POD_IP, "", True),
        seen(nw.DNS_SERVER, "", False, SAME_NODE, "udp"),
        seen(nw.POD_IP, nw.DNS_NODE_TRANSPORT, False, SAME_NODE, "udp")))
    found = decide_baseline(HOPS["network_policy"], findings, nw.NAME, CROSS_NODE, "udp",
                            "client-b -> dns:http")
    assert (found.layer, found.test_id) == (POD_NETWORK, "test_pod_ip[same-node-udp]")
    # The lookups of the DNS hops themselves: the same evidence, the same block.
    assert decide(HOPS["dns_service_name"], findings).layer == POD_NETWORK


# ---------------------------------------------------------------- Services and NodePorts

@pytest.mark.parametrize("hop", ["node_port_server_node", "node_port_other_node"])
def test_a_node_port_is_blocked_by_its_service_and_fails_when_the_service_answers(hop):
    broken = Findings(nw.NODE_PORT, "TIMEOUT", "tcp", SAME_NODE,
                      (seen(nw.CLUSTER_IP, "", False, SAME_NODE), seen(nw.POD_IP, "", True)))
    assert decide(HOPS[hop], broken).test_id == "test_cluster_ip[same-node-tcp]"
    blocked_port = Findings(nw.NODE_PORT, "TIMEOUT", "tcp", CROSS_NODE,
                            (seen(nw.CLUSTER_IP, "", True), seen(nw.POD_IP, "", True)))
    assert decide(HOPS[hop], blocked_port) is FAILED


def test_a_cluster_ip_whose_backend_fails_is_blocked_by_the_pod_network():
    findings = Findings(nw.CLUSTER_IP, "TIMEOUT", "tcp", CROSS_NODE,
                        (seen(nw.POD_IP, "", False, CROSS_NODE),))
    assert decide(HOPS["cluster_ip"], findings).layer == POD_NETWORK
    answered = Findings(nw.CLUSTER_IP, "TIMEOUT", "tcp", CROSS_NODE,
                        (seen(nw.POD_IP, "", True, CROSS_NODE),))
    assert decide(HOPS["cluster_ip"], answered) is FAILED


def test_hairpin_fails_only_when_its_service_answers_from_beside_it():
    broken_service = Findings(nw.CLUSTER_IP, "TIMEOUT", "tcp", SAME_NODE, (
        seen(nw.POD_IP, "", True, SAME_NODE), seen(nw.POD_IP, nw.PEER, True, SAME_NODE),
        seen(nw.CLUSTER_IP, nw.PEER, False, SAME_NODE)))
    assert decide(HOPS["hairpin"], broken_service).layer == SERVICE
    hairpin_off = Findings(nw.CLUSTER_IP, "TIMEOUT", "tcp", SAME_NODE, (
        seen(nw.POD_IP, "", True, SAME_NODE), seen(nw.POD_IP, nw.PEER, True, SAME_NODE),
        seen(nw.CLUSTER_IP, nw.PEER, True, SAME_NODE)))
    assert decide(HOPS["hairpin"], hairpin_off) is FAILED


def test_no_answer_at_all_is_the_reach_layers_for_a_hop_that_says_so():
    timeout = Findings(nw.CLUSTER_IP, "TIMEOUT", "udp", SAME_NODE,
                       (seen(nw.POD_IP, "", True, SAME_NODE, "udp"),))
    assert decide(HOPS["source_ip_cluster_ip"], timeout).layer == SERVICE
    assert decide(HOPS["cluster_ip"], timeout) is FAILED  # its own layer: no reach layer
    wrong_source = Findings(nw.CLUSTER_IP, "WRONG_SOURCE", "udp", SAME_NODE,
                            (seen(nw.POD_IP, "", True, SAME_NODE, "udp"),))
    assert decide(HOPS["source_ip_cluster_ip"], wrong_source) is FAILED


def test_the_bottom_of_the_walk_is_never_blocked():
    findings = Findings(nw.POD_IP, "TIMEOUT", "tcp", CROSS_NODE, (
        seen(nw.POD_IP, nw.SAME_NODE_CLIENT, True), seen(nw.POD_IP, nw.SAME_NODE_TARGET, True)))
    assert decide(HOPS["pod_ip"], findings) is FAILED
    assert decide(HOPS["node_to_pod"], findings) is FAILED
