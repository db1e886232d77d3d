"""NetworkPolicy semantics without a cluster: policyeval's verdicts on the suite's own
policies (manifests/policy-*.yaml) and on hand-written ones, and policytext's words."""

from string import Template

import pytest
import yaml

from packetwalk.diagnose import policyeval as pe
from packetwalk.diagnose.policytext import also_present, on_the_path, side_line
from packetwalk.workloads import MANIFESTS

NS, PEER = "pw-1", "pw-1-peer"
NAMESPACES = {
    NS: {"kubernetes.io/metadata.name": NS, "packetwalk.io/run": "1"},
    PEER: {"kubernetes.io/metadata.name": PEER, "packetwalk.io/run": "1",
           "packetwalk.io/role": "peer"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
}
NETEXEC_PORTS = ({"name": "http", "containerPort": 8080, "protocol": "TCP"},
                 {"name": "udp", "containerPort": 8081, "protocol": "UDP"})


def pod(name, namespace, ip, node="pw-worker", ports=NETEXEC_PORTS, **labels):
    return pe.Endpoint(name, namespace, ip, {k.replace("_", "/"): v for k, v in labels.items()},
                       NAMESPACES[namespace], node, ports)


def client(access, ip):
    namespace = PEER if access == "peer" else NS
    return pe.Endpoint(f"policy-client-{access}", namespace, ip,
                       {"packetwalk.io/role": "policy-client", "packetwalk.io/access": access,
                        "packetwalk.io/lane": "1"}, NAMESPACES[namespace], "pw-worker",
                       NETEXEC_PORTS)


SERVER = pe.Endpoint("policy-server", NS, "10.244.2.9",
                     {"packetwalk.io/role": "policy-server", "packetwalk.io/lane": "1"},
                     NAMESPACES[NS], "pw-worker2",
                     (*NETEXEC_PORTS, {"name": "alt", "containerPort": 8082, "protocol": "TCP"}))
A, B, P = client("a", "10.244.1.10"), client("b", "10.244.1.11"), client("peer", "10.244.1.12")
COREDNS = pe.Endpoint("coredns-abc", "kube-system", "10.244.0.2", {"k8s-app": "kube-dns"},
                      NAMESPACES["kube-system"], "pw-worker",
                      ({"name": "dns", "containerPort": 53, "protocol": "UDP"},
                       {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}))
OUTSIDE = pe.Endpoint("203.0.113.7", ip="203.0.113.7")


def manifest(name):
    """A policy of the suite as the API would hand it back, in lane 1 of run 1."""
    text = Template((MANIFESTS / f"policy-{name}.yaml").read_text()).safe_substitute(
        LANE="1", NAMESPACE=NS, PEER_NAMESPACE=PEER, RUN="1",
        CLIENTS_CIDR="10.244.1.0/24", CLIENT_B_HOST="10.244.1.11/32")
    return yaml.safe_load(text)


def policy(name, namespace=NS, **spec):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def passes(src, dst, port, protocol, *policies):
    egress, ingress = pe.judge(pe.Flow(src, dst, port, protocol), list(policies))
    return egress.admitted and ingress.admitted


def test_policy_types_default_to_ingress_and_add_egress_only_with_egress_rules():
    assert pe.policy_types({"podSelector": {}}) == ["Ingress"]
    assert pe.policy_types({"podSelector": {}, "egress": [{}]}) == ["Ingress", "Egress"]
    assert pe.policy_types({"policyTypes": ["Egress"]}) == ["Egress"]


def test_a_policy_without_ingress_rules_denies_all_ingress_but_leaves_egress_open():
    deny = manifest("deny-ingress")
    egress, ingress = pe.judge(pe.Flow(A, SERVER, 8080, "TCP"), [deny])
    assert ingress.isolated and not ingress.admitted
    assert not egress.isolated and egress.admitted
    assert passes(SERVER, A, 8080, "TCP", deny)  # the server's own egress is not isolated


def test_a_policy_selects_pods_of_its_own_namespace_only():
    elsewhere = {**manifest("deny-ingress"), "metadata": {"name": "d", "namespace": PEER}}
    assert passes(A, SERVER, 8080, "TCP", elsewhere)


def test_pod_selector_match_expressions_decide_isolation():
    unless_exempt = manifest("deny-ingress-unless-exempt")
    exempt = pe.Endpoint(SERVER.name, NS, SERVER.ip,
                         {**SERVER.labels, "packetwalk.io/policy-exempt": "true"}, NAMESPACES[NS])
    assert not passes(A, SERVER, 8080, "TCP", unless_exempt)
    assert passes(A, exempt, 8080, "TCP", unless_exempt)


def test_a_pod_selector_peer_means_pods_of_the_policys_namespace():
    allow_a = manifest("allow-from-client-a")
    assert passes(A, SERVER, 8080, "TCP", allow_a)
    assert not passes(B, SERVER, 8080, "TCP", allow_a)
    a_elsewhere = pe.Endpoint("a2", PEER, "10.244.1.20", A.labels, NAMESPACES[PEER])
    assert not passes(a_elsewhere, SERVER, 8080, "TCP", allow_a)


# (the semantic point, the suite's policy, source, port, protocol, whether it passes)
TABLE = [
    ("namespace selector: every pod of the namespace", "allow-from-peer-namespace", P, 8080, "TCP", True),
    ("namespace selector: not another namespace", "allow-from-peer-namespace", A, 8080, "TCP", False),
    ("both selectors in one peer: both match", "allow-peer-pod-and-namespace", P, 8080, "TCP", True),
    ("both selectors in one peer: labels, wrong namespace", "allow-peer-pod-and-namespace", A, 8080,
     "TCP", False),
    ("separate peers: the namespace one", "allow-peer-or-client-a", P, 8080, "TCP", True),
    ("separate peers: the pod one", "allow-peer-or-client-a", A, 8080, "TCP", True),
    ("separate peers: neither", "allow-peer-or-client-a", B, 8080, "TCP", False),
    ("ipBlock: in the CIDR", "allow-ipblock-except-client-b", A, 8080, "TCP", True),
    ("ipBlock: in the CIDR and excepted", "allow-ipblock-except-client-b", B, 8080, "TCP", False),
    ("ipBlock: outside the CIDR", "allow-ipblock-except-client-b", OUTSIDE, 8080, "TCP", False),
    ("numbered port: that port", "allow-http-port", A, 8080, "TCP", True),
    ("numbered port: another", "allow-http-port", A, 8082, "TCP", False),
]


@pytest.mark.parametrize(("point", "name", "src", "port", "protocol", "expected"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_peers_and_ports_of_the_suites_policies(point, name, src, port, protocol, expected):
    assert passes(src, SERVER, port, protocol, manifest(name)) is expected


def test_a_port_without_protocol_is_tcp():
    numbered = policy("tcp-8081", podSelector={}, ingress=[{"ports": [{"port": 8081}]}])
    assert passes(A, SERVER, 8081, "TCP", numbered)
    assert not passes(A, SERVER, 8081, "UDP", numbered)


def test_udp_and_sctp_rules_leave_tcp_closed():
    assert passes(A, SERVER, 8081, "UDP", manifest("allow-udp-only"))
    assert not passes(A, SERVER, 8080, "TCP", manifest("allow-udp-only"))
    assert not passes(A, SERVER, 8080, "TCP", manifest("allow-sctp-only"))
    assert passes(A, SERVER, 8080, "SCTP", manifest("allow-sctp-only"))


def test_a_named_port_is_resolved_on_the_destination_pods_container_ports():
    alt = manifest("allow-named-port-alt")
    assert passes(A, SERVER, 8082, "TCP", alt)
    assert not passes(A, SERVER, 8080, "TCP", alt)  # named http, not alt
    no_alt = pe.Endpoint("plain", NS, "10.244.2.10", SERVER.labels, NAMESPACES[NS],
                         ports=NETEXEC_PORTS)
    assert not passes(A, no_alt, 8082, "TCP", alt)


def test_end_port_makes_a_range():
    ranged = policy("range", podSelector={},
                    ingress=[{"ports": [{"protocol": "TCP", "port": 8080, "endPort": 8082}]}])
    assert passes(A, SERVER, 8082, "TCP", ranged)
    assert not passes(A, SERVER, 8083, "TCP", ranged)


def test_a_port_with_only_a_protocol_admits_every_port_of_it():
    any_tcp = manifest("allow-tcp-any-port")
    assert passes(A, SERVER, 8082, "TCP", any_tcp)
    assert not passes(A, SERVER, 8081, "UDP", any_tcp)


def test_an_empty_rule_admits_everything():
    assert passes(OUTSIDE, SERVER, 9999, "UDP", manifest("allow-all-ingress"))


def test_policies_selecting_a_pod_add_up():
    deny, allow_a = manifest("deny-ingress"), manifest("allow-from-client-a")
    assert passes(A, SERVER, 8080, "TCP", deny, allow_a)
    _, ingress = pe.judge(pe.Flow(B, SERVER, 8080, "TCP"), [deny, allow_a])
    assert not ingress.admitted
    assert [j.name for j in ingress.judgements] == ["pw-1/deny-ingress-1",
                                                    "pw-1/allow-from-client-a-1"]


def test_egress_is_judged_at_the_source_against_the_destination():
    only_dns = manifest("egress-only-dns-client-b")
    assert passes(B, COREDNS, 53, "UDP", only_dns)
    egress, ingress = pe.judge(pe.Flow(B, SERVER, 8080, "TCP"), [only_dns])
    assert egress.isolated and not egress.admitted and not ingress.isolated
    assert passes(A, SERVER, 8080, "TCP", only_dns)  # selects client-b only


def test_an_egress_named_port_is_the_destination_pods():
    named = manifest("egress-named-port-http-client-b")
    assert passes(B, SERVER, 8080, "TCP", named)
    assert not passes(B, SERVER, 8082, "TCP", named)
    assert not passes(B, COREDNS, 53, "UDP", named)


def test_a_host_outside_is_never_isolated_and_only_an_ip_block_matches_it():
    everyone = policy("all-pods", podSelector={}, ingress=[{"from": [{"namespaceSelector": {}}]}])
    assert not passes(OUTSIDE, SERVER, 8080, "TCP", everyone)
    assert passes(A, SERVER, 8080, "TCP", everyone)
    assert passes(SERVER, OUTSIDE, 443, "TCP", everyone)


LOCK_DOWN = policy("lock-down", "kube-system", podSelector={}, policyTypes=["Ingress"],
                   ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
                       "kubernetes.io/metadata.name": "kube-system"}}}]}])


def test_a_lock_down_of_kube_system_is_named_with_its_rule():
    flow = pe.Flow(A, COREDNS, 53, "UDP")
    _, ingress = pe.judge(flow, [LOCK_DOWN])
    assert side_line(flow, ingress) == (
        "kube-system/lock-down (Ingress) selects coredns-abc on pw-worker and admits no traffic "
        "from policy-client-a in namespace pw-1, port 53/UDP (dns): its only rule allows "
        "namespace kube-system")
    found = on_the_path([(flow, pe.judge(flow, [LOCK_DOWN]))])
    assert found.denying == ("kube-system/lock-down",) and found.selected


def test_several_policies_isolating_one_side_are_all_named():
    bare = policy("no-rules", "kube-system", podSelector={}, policyTypes=["Ingress"])
    flow = pe.Flow(A, COREDNS, 53, "TCP")
    _, ingress = pe.judge(flow, [LOCK_DOWN, bare])
    assert side_line(flow, ingress) == (
        "none of kube-system/lock-down, kube-system/no-rules (Ingress) selecting coredns-abc on "
        "pw-worker admits traffic from policy-client-a in namespace pw-1, port 53/TCP (dns-tcp): "
        "kube-system/lock-down: its only rule allows namespace kube-system; "
        "kube-system/no-rules: it has no Ingress rule, so it admits nothing")


def test_rules_are_described_by_peers_and_ports():
    flow = pe.Flow(B, SERVER, 8082, "TCP")
    _, ingress = pe.judge(flow, [manifest("allow-ipblock-except-client-b")])
    assert side_line(flow, ingress).endswith(
        "its only rule allows 10.244.1.0/24 except 10.244.1.11/32")
    egress, _ = pe.judge(flow, [manifest("egress-named-port-http-client-b")])
    assert side_line(flow, egress).endswith(
        "its only rule allows pods packetwalk.io/role=policy-server,packetwalk.io/lane=1 in "
        "namespace pw-1 on port http/TCP")


def test_nothing_denying_is_said_plainly():
    flow = pe.Flow(A, SERVER, 8080, "TCP")
    admitted = on_the_path([(flow, pe.judge(flow, [manifest("allow-from-client-a")]))])
    admits = ("pw-1/allow-from-client-a-1 (Ingress) selects policy-server on pw-worker2 and "
              "admits traffic from policy-client-a in namespace pw-1, port 8080/TCP (http)")
    assert admitted.lines == (admits, "no policy on the path denies this traffic")
    assert admitted.selected and not admitted.denying
    unselected = on_the_path([(flow, pe.judge(flow, []))], pods=["policy-client-a"])
    clear = "none select policy-client-a, policy-server: no policy on the path denies this traffic"
    assert unselected.lines == (clear,)
    assert not unselected.selected


def test_other_policy_kinds_are_counted_not_evaluated():
    assert also_present([("CiliumNetworkPolicy", 2), ("AdminNetworkPolicy", 1)], []) == (
        "also present, not evaluated: 2 CiliumNetworkPolicy, 1 AdminNetworkPolicy")
    assert also_present([], ["Calico GlobalNetworkPolicy (403 Forbidden)"]) == (
        "could not read Calico GlobalNetworkPolicy (403 Forbidden)")
    assert also_present([], []) is None


def test_traffic_a_policy_admits_only_by_an_ip_block_holding_a_pod_ip_is_told_apart():
    """The suite's ipblock-except policy admits client-a by its IP alone: on an enforcer
    that never matches pods by ipBlock (Cilium) that traffic is dropped, and the
    diagnosis says why, not "their rules or the enforcer's rule order"."""
    from packetwalk.diagnose.policies import conclude_cell

    by_block = manifest("allow-ipblock-except-client-b")
    flow = pe.Flow(A, SERVER, 8080)
    sides = pe.judge(flow, [by_block])
    assert [s.admitted_by_ip_block for s in sides] == [(), ("pw-1/allow-ipblock-except-client-b-1",)]
    found = on_the_path([(flow, sides)])
    assert found.by_ip_block == ("pw-1/allow-ipblock-except-client-b-1",) and not found.denying
    assert conclude_cell("open", "TIMEOUT", found, "pw-worker2") == (
        "traffic the policies admit only by an ipBlock holding a pod's IP "
        "(pw-1/allow-ipblock-except-client-b-1) is TIMEOUT: the API means ipBlock for "
        "cluster-external addresses, and some enforcers never match a pod by it (cilium "
        "documents this: cilium/cilium#9209)")
    # Admitted by a selector as well, or from a host outside: not the ipBlock's doing.
    by_label = policy("allow-a", podSelector={}, policyTypes=["Ingress"], ingress=[
        {"from": [{"podSelector": {"matchLabels": {"packetwalk.io/access": "a"}}}]}])
    both = on_the_path([(flow, pe.judge(flow, [by_block, by_label]))])
    assert both.by_ip_block == () and conclude_cell("open", "TIMEOUT", both, "w2").startswith(
        "traffic the policies allow is TIMEOUT")
    outside = pe.Flow(OUTSIDE, SERVER, 8080)
    open_to_world = policy("allow-world", podSelector={}, policyTypes=["Ingress"],
                           ingress=[{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])
    assert on_the_path([(outside, pe.judge(outside, [open_to_world]))]).by_ip_block == ()
    # A pod the ipBlock's except leaves out is not admitted at all: a denial, said so.
    denied = on_the_path([(pe.Flow(B, SERVER, 8080), pe.judge(pe.Flow(B, SERVER, 8080), [by_block]))])
    assert denied.by_ip_block == () and denied.denying
