"""The self-check's expected ids, derived by rules from the hop catalogue
(tests/selfcheck/expected.py), are exactly the sets that were typed out id by id
before the rules (copied here as data, from packetwalk/lab/faults_expected.py).
"""

import pytest

from packetwalk.hops import POLICY_CASES, SERVICE, Hop
from tests.selfcheck.expected import CASES, EXPECTED, Case

# The typed-out sets the rules replaced.
TYPED = {
    "dns-down": {
        "test_dns_connect_by_name[tcp]", "test_dns_connect_by_name[udp]", "test_dns_headless[tcp]",
        "test_dns_headless[udp]", "test_dns_service_name[fqdn-tcp]",
        "test_dns_service_name[fqdn-udp]", "test_dns_service_name[namespace-tcp]",
        "test_dns_service_name[namespace-udp]", "test_dns_service_name[short-tcp]",
        "test_dns_service_name[short-udp]", "test_network_policy[deny-egress]",
        "test_network_policy[egress-only-dns]",
    },
    "kube-proxy-broken": {
        "test_cluster_ip[cross-node-tcp]", "test_cluster_ip[cross-node-udp]",
        "test_cluster_ip[same-node-tcp]", "test_cluster_ip[same-node-udp]",
        "test_cluster_ip_every_backend[cross-node-tcp]",
        "test_cluster_ip_every_backend[cross-node-udp]", "test_dns_connect_by_name[tcp]",
        "test_dns_connect_by_name[udp]", "test_dns_headless[tcp]", "test_dns_headless[udp]",
        "test_dns_service_name[fqdn-tcp]", "test_dns_service_name[fqdn-udp]",
        "test_dns_service_name[namespace-tcp]", "test_dns_service_name[namespace-udp]",
        "test_dns_service_name[short-tcp]", "test_dns_service_name[short-udp]",
        "test_hairpin[tcp]", "test_hairpin[udp]", "test_network_policy[default-deny-ingress]",
        "test_network_policy[deny-egress]", "test_network_policy[egress-only-dns]",
        "test_network_policy[removing-policy-restores-traffic]",
        "test_node_port_external_cluster[cross-node]",
        "test_node_port_external_cluster[same-node]", "test_node_port_external_local[same-node]",
        "test_node_port_on_other_node[cross-node-tcp]",
        "test_node_port_on_other_node[cross-node-udp]",
        "test_node_port_on_server_node[same-node-tcp]",
        "test_node_port_on_server_node[same-node-udp]",
        "test_source_ip_via_cluster_ip[cross-node-tcp]",
        "test_source_ip_via_cluster_ip[cross-node-udp]",
        "test_source_ip_via_cluster_ip[same-node-tcp]",
        "test_source_ip_via_cluster_ip[same-node-udp]",
    },
    "nodeport-blocked": {
        "test_node_port_on_other_node[same-node-tcp]",
        "test_node_port_on_other_node[same-node-udp]",
        "test_node_port_on_server_node[cross-node-tcp]",
        "test_node_port_on_server_node[cross-node-udp]",
    },
    "cross-node-route": {
        "test_cluster_ip[cross-node-tcp]", "test_cluster_ip[cross-node-udp]",
        "test_cluster_ip_every_backend[cross-node-tcp]",
        "test_cluster_ip_every_backend[cross-node-udp]", "test_mtu[cross-node-tcp]",
        "test_mtu[cross-node-udp]", "test_network_policy[allow-by-namespace-selector]",
        "test_network_policy[allow-by-pod-selector]", "test_network_policy[allow-one-port]",
        "test_network_policy[default-deny-ingress]", "test_network_policy[deny-egress]",
        "test_network_policy[egress-only-dns]",
        "test_network_policy[removing-policy-restores-traffic]",
        "test_node_port_external_cluster[cross-node]",
        "test_node_port_on_other_node[cross-node-tcp]",
        "test_node_port_on_other_node[cross-node-udp]", "test_node_to_pod[cross-node-tcp]",
        "test_node_to_pod[cross-node-udp]", "test_pod_ip[cross-node-tcp]",
        "test_pod_ip[cross-node-udp]", "test_source_ip_via_cluster_ip[cross-node-tcp]",
        "test_source_ip_via_cluster_ip[cross-node-udp]",
        "test_source_ip_via_pod_ip[cross-node-tcp]", "test_source_ip_via_pod_ip[cross-node-udp]",
    },
    "policy-enforcer-down": {
        "test_network_policy[allow-by-namespace-selector]",
        "test_network_policy[allow-by-pod-selector]", "test_network_policy[allow-one-port]",
        "test_network_policy[default-deny-ingress]", "test_network_policy[deny-egress]",
        "test_network_policy[egress-only-dns]",
        "test_network_policy[removing-policy-restores-traffic]",
    },
    "udp-dropped": {
        "test_cluster_ip[cross-node-udp]", "test_cluster_ip[same-node-udp]",
        "test_cluster_ip_every_backend[cross-node-udp]", "test_dns_connect_by_name[tcp]",
        "test_dns_connect_by_name[udp]", "test_dns_headless[udp]",
        "test_dns_service_name[fqdn-udp]", "test_dns_service_name[namespace-udp]",
        "test_dns_service_name[short-udp]", "test_hairpin[udp]", "test_mtu[cross-node-udp]",
        "test_mtu[same-node-udp]", "test_network_policy[deny-egress]",
        "test_network_policy[egress-only-dns]", "test_node_port_on_other_node[cross-node-udp]",
        "test_node_port_on_other_node[same-node-udp]",
        "test_node_port_on_server_node[cross-node-udp]",
        "test_node_port_on_server_node[same-node-udp]", "test_node_to_pod[cross-node-udp]",
        "test_node_to_pod[same-node-udp]", "test_pod_ip[cross-node-udp]",
        "test_pod_ip[same-node-udp]", "test_pod_to_node[cross-node-udp]",
        "test_pod_to_node[same-node-udp]", "test_source_ip_via_cluster_ip[cross-node-udp]",
        "test_source_ip_via_cluster_ip[same-node-udp]",
        "test_source_ip_via_pod_ip[cross-node-udp]", "test_source_ip_via_pod_ip[same-node-udp]",
    },
    "hairpin-off": {
        "test_hairpin[tcp]", "test_hairpin[udp]",
    },
    "mtu-mismatch": {
        "test_mtu[cross-node-tcp]", "test_mtu[cross-node-udp]",
    },
    "egress-masquerade": {
        "test_egress_nat[cross-node]", "test_egress_nat[same-node]",
    },
    # Issue 15's faults: typed out when they were added, whole.
    "policy-ignores-except": {
        "test_network_policy[ipblock-except]", "test_network_policy[ipblock-except-egress]",
        "test_network_policy[ipblock-except-overlap]",
    },
    "policy-ignores-named-ports": {
        "test_network_policy[named-port-egress]", "test_network_policy[named-port-ingress]",
    },
}
# The faults typed out before the policy cases grew (issue 15): their sets hold only
# the policy cases of then; a case added since joins by rule (see below).
FAULTS_THEN = ("dns-down", "kube-proxy-broken", "nodeport-blocked", "cross-node-route",
               "policy-enforcer-down", "udp-dropped", "hairpin-off", "mtu-mismatch",
               "egress-masquerade")
POLICY_CASES_THEN = {
    "default-deny-ingress", "allow-by-pod-selector", "allow-by-namespace-selector",
    "allow-one-port", "deny-egress", "egress-only-dns", "removing-policy-restores-traffic",
}

# The test functions of the suites when the sets were typed out. A hop added since
# (a new test function) joins the faults its rules name; its ids are left out of
# the comparison and listed by test_new_hops_join_by_rule.
TESTS_THEN = {
    "test_cluster_ip", "test_cluster_ip_every_backend", "test_dns_connect_by_name",
    "test_dns_headless", "test_dns_resolv_conf", "test_dns_service_name", "test_egress_nat",
    "test_hairpin", "test_ingress", "test_load_balancer", "test_mtu", "test_network_policy",
    "test_node_port_external_cluster", "test_node_port_external_local",
    "test_node_port_external_local_no_backend", "test_node_port_on_other_node",
    "test_node_port_on_server_node", "test_node_to_pod", "test_pod_ip", "test_pod_to_node",
    "test_source_ip_via_cluster_ip", "test_source_ip_via_pod_ip",
}


def then(ids, fault):
    if fault not in FAULTS_THEN:
        return set(ids)
    return {i for i in ids if i.split("[")[0] in TESTS_THEN and (
        not i.startswith("test_network_policy[") or i[len("test_network_policy["):-1]
        in POLICY_CASES_THEN)}


@pytest.mark.parametrize("fault", list(TYPED))
def test_rules_give_the_typed_sets(fault):
    derived = then(EXPECTED[fault].failing, fault)
    assert derived == TYPED[fault], (
        f"missing {sorted(TYPED[fault] - derived)}, extra {sorted(derived - TYPED[fault])}")


def test_every_fault_has_a_set_and_the_catalogue_is_whole():
    # Faults added after the typed sets (dns-policy) have their sets by rule only.
    assert set(TYPED) <= set(EXPECTED)
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert TESTS_THEN <= {i.split("[")[0] for i in ids}
    for expected in EXPECTED.values():
        assert expected.failing <= set(ids)
        assert set(expected.diagnosed) <= expected.failing


# A Service hop added later, as helper B's session affinity is: cross-node through
# a ClusterIP. Which faults' rules take it in.
AFFINITY = Hop("session_affinity", "test_session_affinity", "session affinity", SERVICE,
               placements=("cross-node",))


def test_a_new_service_hop_joins_the_faults_of_its_layer_by_rule():
    cases = [Case(AFFINITY, "cross-node", None, protocol) for protocol in ("tcp", "udp")]
    joins = {fault: [c.id for c in cases if e.fails(c)] for fault, e in EXPECTED.items()}
    assert {fault: found for fault, found in joins.items() if found} == {
        "kube-proxy-broken": ["test_session_affinity[cross-node-tcp]",
                              "test_session_affinity[cross-node-udp]"],
        **{fault: ["test_session_affinity[cross-node-tcp]", "test_session_affinity[cross-node-udp]"]
           for fault in ("cross-node-route", "flanneld-down", "bgp-down")},
        "udp-dropped": ["test_session_affinity[cross-node-udp]"],
    }


def test_new_policy_cases_join_the_faults_of_what_they_use_by_rule():
    """The policy cases added since the sets were typed out, per fault: the enforcer
    and the second node break them all, DNS those that resolve, UDP those with a UDP
    cell; the SCTP case skips on the lab (no SCTP), so no fault expects it red."""
    new = {f"test_network_policy[{name}]" for name in POLICY_CASES} - {
        f"test_network_policy[{name}]" for name in POLICY_CASES_THEN}
    joins = {fault: sorted(set(e.failing) & new) for fault, e in EXPECTED.items()}
    runs = sorted(new - {"test_network_policy[sctp-not-tcp]"})
    assert joins["policy-enforcer-down"] == runs
    assert joins["cross-node-route"] == runs
    assert joins["udp-dropped"] == ["test_network_policy[protocol-only]",
                                    "test_network_policy[udp-only-not-tcp]"]
    assert joins["dns-down"] == joins["kube-proxy-broken"] == []
    assert joins["policy-ignores-except"] == sorted(TYPED["policy-ignores-except"])
    assert joins["policy-ignores-named-ports"] == sorted(TYPED["policy-ignores-named-ports"])
    for fault in ("nodeport-blocked", "hairpin-off", "mtu-mismatch", "egress-masquerade"):
        assert joins[fault] == [], fault
