"""Diagnosis decisions without a cluster: narrowing plans, conclusions, capture cases."""

from packetwalk.diagnose import narrowing as nw
from packetwalk.diagnose import packets as pk
from packetwalk.diagnose.capture import sections
from packetwalk.diagnose.conclusion import conclude, summarize, through
from packetwalk.diagnose.policies import conclude_cell
from packetwalk.diagnose.policyeval import selects
from packetwalk.diagnose.policytext import PathPolicies
from packetwalk.inventory import Inventory, Pod, Service
from packetwalk.placement import Node
from packetwalk.probes import Target
from packetwalk.records import DiagnosisRecord

A, B = Node("pw-worker", "10.250.0.11", "pw-worker"), Node("pw-worker2", "10.250.0.12", "pw-worker2")


def inventory() -> Inventory:
    pods = {name: Pod(name, "pw-1", role, node, ip, port) for name, role, node, ip, port in (
        ("client-pw-worker", "client", "pw-worker", "10.244.1.5", 8080),
        ("client-pw-worker2", "client", "pw-worker2", "10.244.2.5", 8080),
        ("server-pw-worker", "server", "pw-worker", "10.244.1.6", 8080),
        ("server-pw-worker2", "server", "pw-worker2", "10.244.2.7", 8080),
        ("host-pw-worker", "host", "pw-worker", "10.250.0.11", 18080),
        ("host-pw-worker2", "host", "pw-worker2", "10.250.0.12", 18080),
        ("policy-client-a", "policy-client", "pw-worker", "10.244.1.9", 8080),
        ("policy-server", "policy-server", "pw-worker2", "10.244.2.9", 8080))}
    services = {
        "server-pw-worker2": Service("server-pw-worker2", "pw-1", "10.96.12.7",
                                     {"http": 80, "udp": 81}, {"http": 30080, "udp": 30081},
                                     ("server-pw-worker2",)),
        "servers": Service("servers", "pw-1", "10.96.12.8", {"http": 80, "udp": 81}, {},
                           ("server-pw-worker", "server-pw-worker2")),
        "tcp-only": Service("tcp-only", "pw-1", "10.96.12.9", {"http": 80}, {}, ("server-pw-worker",))}
    return Inventory("1", "pw-1", "pw-1-peer", [A, B], "10.96.0.10", pods, services)


def steps_for(to: Target, name: str | None = None, src: str = "client-pw-worker", large=False):
    inv = inventory()
    return [(s.kind, s.change, s.src.name, s.to.ip, s.to.port)
            for s in nw.plan(nw.Attempt(inv.pods[src], to, name, large=large), inv)]


def test_a_failed_cluster_ip_is_narrowed_to_each_backend_and_the_node():
    assert steps_for(Target("10.96.12.8", 81, "udp")) == [
        (nw.POD_IP, "", "client-pw-worker", "10.244.1.6", 8081),
        (nw.POD_IP, "", "client-pw-worker", "10.244.2.7", 8081),
        (nw.CLUSTER_IP, nw.FROM_NODE, "host-pw-worker", "10.96.12.8", 81)]


def test_a_failed_name_is_narrowed_to_its_cluster_ip_then_one_pod_ip():
    assert steps_for(Target("servers", 53, "udp"), name="servers") == [
        (nw.CLUSTER_IP, "", "client-pw-worker", "10.96.12.8", 80),
        (nw.POD_IP, "", "client-pw-worker", "10.244.1.6", 8080)]


def test_a_failed_node_port_is_narrowed_to_the_cluster_ip_and_backends():
    steps = steps_for(Target("10.250.0.12", 30080, "tcp"))
    assert steps[:2] == [(nw.CLUSTER_IP, "", "client-pw-worker", "10.96.12.7", 80),
                         (nw.POD_IP, "", "client-pw-worker", "10.244.2.7", 8080)]


def test_a_failed_cross_node_pod_ip_is_tried_same_node_both_ways_and_from_the_node():
    assert steps_for(Target("10.244.2.7", 8080, "tcp")) == [
        (nw.POD_IP, nw.SAME_NODE_CLIENT, "client-pw-worker2", "10.244.2.7", 8080),
        (nw.POD_IP, nw.SAME_NODE_TARGET, "client-pw-worker", "10.244.1.6", 8080),
        (nw.POD_IP, nw.OTHER_PROTOCOL, "client-pw-worker", "10.244.2.7", 8081),
        (nw.POD_IP, nw.FROM_NODE, "host-pw-worker", "10.244.2.7", 8080)]


def test_a_failed_node_port_is_tried_over_the_other_protocol_on_the_same_node():
    assert (nw.NODE_PORT, nw.OTHER_PROTOCOL, "client-pw-worker", "10.250.0.12", 30081) in steps_for(
        Target("10.250.0.12", 30080, "tcp"))


def test_only_a_one_backend_service_is_tried_over_the_other_protocol():
    assert (nw.CLUSTER_IP, nw.OTHER_PROTOCOL, "client-pw-worker", "10.96.12.7", 80) in steps_for(
        Target("10.96.12.7", 81, "udp"))


def test_a_service_without_the_other_protocol_gets_no_such_step():
    steps = steps_for(Target("10.96.12.9", 80, "tcp"))
    assert steps and all(change != nw.OTHER_PROTOCOL for _, change, *_ in steps)


def test_a_failed_near_mtu_payload_is_retried_small_and_nothing_else():
    assert steps_for(Target("10.244.2.7", 8081, "udp"), large=True) == [
        (nw.POD_IP, nw.SMALL, "client-pw-worker", "10.244.2.7", 8081)]


def test_a_pod_without_a_twin_is_stood_in_for_by_the_plain_client_and_server():
    steps = steps_for(Target("10.244.2.9", 8080, "tcp"), src="policy-client-a")
    assert [s[:3] for s in steps][:2] == [(nw.POD_IP, nw.SAME_NODE_CLIENT, "client-pw-worker2"),
                                          (nw.POD_IP, nw.SAME_NODE_TARGET, "policy-client-a")]
    assert steps[1][3] == "10.244.1.6"  # server-pw-worker, on the client's node


def test_a_node_is_not_tried_from_itself():
    steps = steps_for(Target("10.244.2.7", 8080, "tcp"), src="host-pw-worker")
    assert [s[:3] for s in steps] == [(nw.POD_IP, nw.SAME_NODE_CLIENT, "host-pw-worker2"),
                                      (nw.POD_IP, nw.SAME_NODE_TARGET, "host-pw-worker"),
                                      (nw.POD_IP, nw.OTHER_PROTOCOL, "host-pw-worker")]


def test_size_and_protocol_findings_come_before_the_layers():
    broken_below = [(nw.POD_IP, "", False), (nw.POD_IP, nw.SAME_NODE_CLIENT, False)]
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SMALL, True)], "w1").startswith(
        "a small request to the same target answers, the near-MTU payload does not: path MTU")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SMALL, False)], "w1").startswith(
        "even a small request")
    assert conclude(nw.CLUSTER_IP, [*broken_below, (nw.CLUSTER_IP, nw.OTHER_PROTOCOL, True)], "w1",
                    "udp").startswith("UDP fails, TCP to the same target answers")
    assert conclude(nw.POD_IP, [*broken_below, (nw.POD_IP, nw.OTHER_PROTOCOL, True),
                                (nw.POD_IP, nw.FROM_NODE, True)], "w1", "udp").startswith(
        "UDP fails, TCP to the same target answers")
    assert "drops" not in conclude(nw.CLUSTER_IP, [*broken_below, (nw.CLUSTER_IP, nw.OTHER_PROTOCOL, False)],
                                   "w1", "udp")
    assert conclude(nw.NODE_PORT, [(nw.CLUSTER_IP, "", False), (nw.POD_IP, "", False)], "w1").startswith(
        "NodePort, ClusterIP and pod IPs fail")


def test_conclusions_name_what_the_narrowing_showed():
    assert conclude(nw.CLUSTER_IP, [(nw.POD_IP, "", True), (nw.CLUSTER_IP, nw.FROM_NODE, False)],
                    "w1").startswith("ClusterIP fails, pod IPs answer: Service translation on w1")
    assert conclude(nw.CLUSTER_IP, [(nw.POD_IP, "", True), (nw.POD_IP, "", False)], "w1") == \
        "ClusterIP fails, some pod IPs fail too: a backend is unreachable"
    assert conclude(nw.NAME, [(nw.CLUSTER_IP, "", True), (nw.POD_IP, "", True)], "w1").startswith(
        "name fails, ClusterIP answers")
    assert conclude(nw.NODE_PORT, [(nw.CLUSTER_IP, "", True)], "w1").startswith(
        "NodePort fails, ClusterIP answers")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SAME_NODE_CLIENT, True), (nw.POD_IP, nw.SAME_NODE_TARGET, True)],
                    "w1").startswith("cross-node fails, same-node answers")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SAME_NODE_CLIENT, False)], "w1").startswith(
        "fails from the target's own node too")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.FROM_NODE, True)], "w1").startswith(
        "the pod fails, its node answers")
    assert conclude(nw.POD_IP, [], "w1") == "the narrowing probes did not tell the layers apart"


def test_the_node_gone_through_is_the_node_dialed_or_the_target_pods():
    inv = inventory()
    client = inv.pods["client-pw-worker"]

    def node_of(to: Target) -> str:
        return through(nw.dialed(nw.Attempt(client, to), inv))
    assert node_of(Target("10.250.0.12", 30081, "udp")) == "pw-worker2"  # a NodePort
    assert node_of(Target("10.244.2.7", 8080, "tcp")) == "pw-worker2"  # a pod
    assert node_of(Target("10.96.12.8", 80, "tcp")) == ""  # a Service: several backends


def test_conclusions_name_the_node_dialed_and_the_targets_not_only_the_clients():
    """A NodePort is translated on the node dialed, its ClusterIP on the client's."""
    assert conclude(nw.NODE_PORT, [(nw.CLUSTER_IP, "", True)], "pw-worker", "udp",
                    "pw-worker2") == ("NodePort fails, ClusterIP answers: NodePort rules of "
                                      "pw-worker2 or a firewall in front of it")
    both = [(nw.CLUSTER_IP, "", False), (nw.POD_IP, "", True)]
    assert conclude(nw.NODE_PORT, both, "pw-worker", "tcp", "pw-worker2") == (
        "NodePort and ClusterIP fail, pod IPs answer: Service translation on pw-worker "
        "(the ClusterIP) and pw-worker2 (the NodePort)")
    assert conclude(nw.NODE_PORT, both, "pw-worker", "tcp", "pw-worker") == (
        "NodePort and ClusterIP fail, pod IPs answer: Service translation on pw-worker")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SAME_NODE_CLIENT, True),
                                (nw.POD_IP, nw.SAME_NODE_TARGET, True)],
                    "pw-worker", "tcp", "pw-worker2") == (
        "cross-node fails, same-node answers: the path between the nodes "
        "(pw-worker -> pw-worker2)")
    assert conclude(nw.POD_IP, [(nw.POD_IP, nw.SAME_NODE_CLIENT, False)], "pw-worker", "tcp",
                    "pw-worker2") == ("fails from the target's own node too: the target or "
                                      "its node (pw-worker2)")


def test_summary_counts_each_conclusion_once():
    entries = [DiagnosisRecord("v1", capture="c"), DiagnosisRecord("v1", capture="c"),
               DiagnosisRecord("v2")]
    assert summarize(entries) == ["2 x v1 | capture: c", "1 x v2"]


C, S = "10.244.1.5", "10.244.2.7"
CV, CU = pk.Point("w1", "veth1", pk.CLIENT), pk.Point("w1", "eth0", pk.UPLINK)
SU, SV = pk.Point("w2", "eth0", pk.UPLINK), pk.Point("w2", "veth2", pk.SERVER)
SYN = f"1.000000 IP {C}.40000 > {S}.8080: Flags [S], seq 1, length 0"
SYN_ACK = f"1.001000 IP {S}.8080 > {C}.40000: Flags [S.], seq 2, ack 2, length 0"


def case(client="", uplinks="", server="", target=(S, 8080)):
    captures = {CV: pk.parse_packets(client), CU: pk.parse_packets(uplinks),
                SU: pk.parse_packets(uplinks), SV: pk.parse_packets(server)}
    return pk.classify(captures, C, target, {S})


def test_the_three_cases_and_the_good_one():
    assert case(client=SYN, uplinks=SYN).case == pk.NEVER_SEEN
    assert case(client=SYN, uplinks=SYN, server=SYN).case == pk.NO_ANSWER
    assert case(client=SYN, uplinks=SYN, server=f"{SYN}\n{SYN_ACK}").case == pk.ANSWER_LOST
    assert case(client=f"{SYN}\n{SYN_ACK}", server=f"{SYN}\n{SYN_ACK}").case == pk.ANSWERED
    assert case(server=SYN).case == pk.NEVER_SENT


def test_toward_the_outside_a_pod_address_on_the_uplink_means_no_masquerade():
    out = "198.51.100.10"
    syn = f"1.000000 IP {C}.40000 > {out}.80: Flags [S], seq 1, length 0"
    ack = f"1.001000 IP {out}.80 > {C}.40000: Flags [S.], seq 2, ack 2, length 0"
    leaked = {CV: pk.parse_packets(syn), CU: pk.parse_packets(syn)}
    masqueraded = {CV: pk.parse_packets(syn), CU: []}  # the uplink saw the node's address
    assert pk.classify(leaked, C, (out, 80), set(), external=True).case == pk.UNMASQUERADED
    assert pk.classify(masqueraded, C, (out, 80), set(), external=True).case == pk.NO_SERVER_SIDE
    assert pk.classify({CV: pk.parse_packets(f"{syn}\n{ack}"), CU: pk.parse_packets(syn)}, C,
                       (out, 80), set(), external=True).case == pk.UNMASQUERADED  # answered anyway
    assert pk.classify({CV: pk.parse_packets(f"{syn}\n{ack}"), CU: []}, C,
                       (out, 80), set(), external=True).case == pk.ANSWERED
    # East-west, pod addresses cross the uplink unmasqueraded by design.
    assert pk.classify(leaked, C, (out, 80), set()).case == pk.NO_SERVER_SIDE


def test_an_outside_host_is_narrowed_to_the_node_and_concluded_on_it():
    inv = inventory()
    attempt = nw.Attempt(inv.pods["client-pw-worker"], Target("198.51.100.10", 80, "tcp"),
                         external=True)
    assert [(s.kind, s.change, s.src.name) for s in nw.plan(attempt, inv)] == [
        (nw.EXTERNAL, nw.FROM_NODE, "host-pw-worker")]
    assert "masquerade" in conclude(nw.EXTERNAL, [(nw.EXTERNAL, nw.FROM_NODE, True)], "w1")
    assert "cannot reach it either" in conclude(nw.EXTERNAL, [(nw.EXTERNAL, nw.FROM_NODE, False)], "w1")


def test_a_reset_is_a_refusal_not_an_answer():
    rst = f"1.001000 IP {S}.8080 > {C}.40000: Flags [R.], seq 0, ack 2, win 0, length 0"
    assert case(client=f"{SYN}\n{rst}").case == pk.RESET
    assert case(client=f"{SYN}\n{SYN_ACK}\n{rst}", server=f"{SYN}\n{SYN_ACK}").case == pk.ANSWERED


def test_a_cluster_ip_flow_is_followed_through_dnat_by_the_client_port():
    to_vip = f"1.000000 IP {C}.40000 > 10.96.12.7.80: Flags [S], seq 1, length 0"
    finding = case(client=to_vip, server=f"{SYN}\n{SYN_ACK}", target=("10.96.12.7", 80))
    assert finding.case == pk.ANSWER_LOST and finding.ports == {40000}
    assert "answer seen at: w2 veth2 (server)" in finding.path


def test_decoded_lines_keep_only_the_clients_flows_in_time_order():
    probe = f"0.500000 IP 10.244.1.1.5555 > {C}.8080: Flags [S], seq 9, length 0"  # kubelet
    captures = {CV: pk.parse_packets(f"{probe}\n{SYN}"), SV: pk.parse_packets(SYN_ACK)}
    assert pk.decoded(captures, C, frozenset({40000})) == [
        f"+  0.000s w1 veth1 (client): IP {C}.40000 > {S}.8080: Flags [S], seq 1, length 0",
        (f"+  0.001s w2 veth2 (server): IP {S}.8080 > {C}.40000: Flags [S.], seq 2, ack 2, "
         "length 0")]


def test_the_pods_veth_and_the_uplink_are_found_from_ip_output():
    links = ("1: lo: <LOOPBACK,UP> mtu 65536\n2: eth0@if61: <BROADCAST> mtu 1500\n"
             "22: vethafdcd2f5@if2: <BROADCAST,UP> mtu 1500 master cni0")
    assert pk.veth_of(links, 22) == "vethafdcd2f5" and pk.veth_of(links, 23) is None
    assert pk.route_dev("10.250.0.12 dev eth0 src 10.250.0.11 uid 0 \\    cache ") == "eth0"


def test_conntrack_tells_whether_the_service_was_translated():
    untranslated = ("tcp 6 102 SYN_SENT src=10.244.1.5 dst=10.96.1.2 sport=5 dport=80 "
                    "[UNREPLIED] src=10.96.1.2 dst=10.250.0.11 sport=80 dport=5 mark=0 use=1")
    translated = ("tcp 6 90 TIME_WAIT src=10.244.1.5 dst=10.96.1.2 sport=6 dport=80 "
                  "src=10.244.2.7 dst=10.244.1.5 sport=8080 dport=6 [ASSURED] mark=0 use=1")
    assert "none translated" in pk.conntrack_summary(untranslated, "10.96.1.2")
    assert "translated to 10.244.2.7" in pk.conntrack_summary(translated, "10.96.1.2")
    assert pk.conntrack_summary("", "10.96.1.2") == "no conntrack entry for 10.96.1.2"


def test_policy_selectors_match_labels_and_expressions():
    labels = {"packetwalk.io/role": "server", "app": "x"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"packetwalk.io/role": "server"}}, labels)
    assert not selects({"matchLabels": {"packetwalk.io/role": "policy-server"}}, labels)
    assert selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]},
                   labels)
    assert not selects({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
                       labels)


def test_the_stop_scripts_output_splits_at_its_markers():
    text = "@@ decode veth1\nline a\nline b\n@@ pcap veth1\nQUJD\n"
    assert sections(text) == {("decode", "veth1"): "line a\nline b", ("pcap", "veth1"): "QUJD"}


def cluster_ip_walk(silent: tuple[str, ...], notes: list):
    """test_cluster_ip[cross-node-udp] with a diagnoser, on an exec where the addresses
    in `silent` time out and everything else answers; (walk, its failed observation)."""
    from packetwalk.diagnose.diagnoser import Diagnoser
    from packetwalk.hops import HOPS
    from packetwalk.placement import build_placements
    from packetwalk.probes import ExecResult, Prober
    from packetwalk.walk import Walk

    def fake_exec(src, command, timeout):
        if any(ip in command[-1] for ip in silent):
            return ExecResult(0, "124 5000000\n", "", 5.0)
        return ExecResult(0, "0 100000 server-pw-worker2\n", "", 0.1)

    inv, prober = inventory(), Prober(fake_exec)
    walk = Walk(inv, prober, HOPS["cluster_ip"], build_placements([A, B])["cross-node"], None,
                "udp", [].append, {}, Diagnoser(inv, prober, None, notes.append, "t"))
    return walk, walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname")


def test_a_failed_hop_carries_its_bisection_in_the_message_and_the_report():
    import pytest

    from packetwalk.walk import HopBlocked, HopFailure

    notes = []
    walk, seen = cluster_ip_walk(("10.96.12.7",), notes)  # the ClusterIP times out, pod IPs answer
    with pytest.raises(HopFailure) as failure:
        walk.expect(seen)
    assert not isinstance(failure.value, HopBlocked)  # what it stands on answers
    assert "Narrowed down: ClusterIP fails, pod IPs answer" in str(failure.value)
    assert "pod IP 10.244.2.7:8081/udp from client-pw-worker: OK" in str(failure.value)
    assert notes[0].verdict.startswith("ClusterIP fails, pod IPs answer")


def test_a_wrong_policy_cell_is_read_from_the_policies_on_its_path():
    denying = PathPolicies(("...",), True, ("pw-1/deny-ingress-1",))
    admitting = PathPolicies(("...",), True, ())
    none = PathPolicies(("none select policy-client-b, policy-server: ...",), False, ())
    assert conclude_cell("blocked", "OK", denying, "w2") == (
        "pw-1/deny-ingress-1 should block it, yet the traffic passed: NetworkPolicy is not "
        "enforced (is the policy enforcer running on w2?)")
    # The IPv6 twin on a dual-stack run whose IPv4 twin passed: the family is named.
    assert conclude_cell("blocked", "OK", denying, "w2", "ipv6") == (
        "pw-1/deny-ingress-1 should block it, yet the traffic passed in IPv6: NetworkPolicy "
        "is not enforced for IPv6 (does the policy enforcer on w2 run, and police IPv6?)")
    assert conclude_cell("blocked", "OK", admitting, "w2").startswith(
        "policies select these pods but their rules admit this traffic")
    assert conclude_cell("blocked", "OK", none, "w2").startswith("no NetworkPolicy selects")
    assert conclude_cell("open", "TIMEOUT", denying, "w2") == (
        "TIMEOUT: pw-1/deny-ingress-1 denies this traffic by its rules")
    assert conclude_cell("open", "TIMEOUT", admitting, "w2").startswith(
        "traffic the policies allow is TIMEOUT")
    assert conclude_cell("open", "TIMEOUT", none, "w2").endswith("not a policy problem, look below it")


RULES = """*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIF
-A KUBE-SVC-TCOU ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-TCOU -m statistic --mode random --probability 0.5 -j KUBE-SEP-A
-A KUBE-SVC-TCOU -j KUBE-SEP-B
-A KUBE-SEP-A -p udp -m udp -j DNAT --to-destination 10.244.0.2:53
-A KUBE-SEP-B -p udp -m udp -j DNAT --to-destination 10.244.0.3:53
*filter
-A KUBE-SERVICES -d 10.96.5.5/32 -p tcp -m comment --comment "pw-1/empty:http has no endpoints" -m tcp --dport 80 -j REJECT
"""


def test_service_rules_say_what_kube_proxy_programmed():
    assert pk.service_rules_summary(RULES, "", "10.96.0.10", 53, "udp") == (
        "iptables: 10.96.0.10:53/udp -> KUBE-SVC-TCOU, 2 endpoint(s): 10.244.0.2:53, 10.244.0.3:53")
    assert "ERIF, 0 endpoint(s)" in pk.service_rules_summary(RULES, "", "10.96.0.10", 53, "tcp")
    assert "has no endpoints" in pk.service_rules_summary(RULES, "", "10.96.5.5", 80, "tcp")
    assert "has not programmed it" in pk.service_rules_summary(RULES, "", "10.96.9.9", 80, "tcp")
    assert "no kube-proxy chains" in pk.service_rules_summary("*nat\n:POSTROUTING ACCEPT\n", "",
                                                             "10.96.9.9", 80, "tcp")
    assert "unreadable" in pk.service_rules_summary("", "", "10.96.9.9", 80, "tcp")
    assert "table mentions 10.96.9.9" in pk.service_rules_summary("", "table ip kube-proxy { 10.96.9.9 }",
                                                                "10.96.9.9", 80, "tcp")


def touched_by(to: Target, name: str | None = None):
    from packetwalk.diagnose.touched import touched
    inv = inventory()
    found = touched(nw.Attempt(inv.pods["client-pw-worker"], to, name), inv)
    return [(pod.name, port, protocol) for pod, port, protocol in found.servers], found.dns


def test_the_policies_are_judged_on_every_pod_the_traffic_reaches():
    # A Service: its backends, on their own ports (after the DNAT).
    assert touched_by(Target("10.96.12.8", 81, "udp")) == (
        [("server-pw-worker", 8081, "udp"), ("server-pw-worker2", 8081, "udp")], None)
    assert touched_by(Target("10.250.0.12", 30080, "tcp")) == (
        [("server-pw-worker2", 8080, "tcp")], None)
    assert touched_by(Target("10.244.2.7", 8080, "tcp")) == ([("server-pw-worker2", 8080, "tcp")],
                                                             None)
    # By name: the DNS pods first (over UDP), then the Service's backends.
    assert touched_by(Target("10.96.12.7", 80, "tcp"), name="server-pw-worker2") == (
        [("server-pw-worker2", 8080, "tcp")], "udp")
    # A lookup only, or the DNS Service's IP: the DNS pods alone.
    assert touched_by(Target("servers", 53, "tcp"), name="servers") == ([], "tcp")
    assert touched_by(Target("10.96.0.10", 53, "udp")) == ([], "udp")


def test_a_hairpin_is_also_asked_from_beside_it():
    steps = steps_for(Target("10.96.12.7", 81, "udp"), src="server-pw-worker2")
    assert (nw.POD_IP, nw.PEER, "client-pw-worker2", "10.244.2.7", 8081) in steps
    assert (nw.CLUSTER_IP, nw.PEER, "client-pw-worker2", "10.96.12.7", 81) in steps
    # Not for a client of the Service that is not one of its backends.
    assert not [s for s in steps_for(Target("10.96.12.7", 81, "udp")) if s[1] == nw.PEER]


def test_a_cluster_ip_whose_backend_fails_too_is_blocked_not_failed():
    """The walk decides (diagnose/blocking.py) on what its diagnosis saw: the backend's
    pod IP across nodes fails as well, so the pod network blocks the ClusterIP."""
    import pytest

    from packetwalk.walk import HopBlocked

    notes = []
    walk, seen = cluster_ip_walk(("10.96.12.7", "10.244.2.7"), notes)  # the backend too
    with pytest.raises(HopBlocked) as blocked:
        walk.expect(seen)
    assert str(blocked.value).startswith(
        "blocked: the pod network (PodIP) across nodes fails (test_pod_ip[cross-node-udp]): "
        "pod IP 10.244.2.7:8081/udp from client-pw-worker: TIMEOUT")
    assert "\n" not in str(blocked.value)
    assert blocked.value.record().layer == "pod network (PodIP)"
    assert notes[0].verdict  # the diagnosis is still left on the report


def test_a_probe_still_unanswered_starts_its_narrowing_beside_it_and_the_failure_uses_it(monkeypatch):
    """A failing test waits out one timeout, not two: the narrowing begun while the
    probe waited is the one the failure reports, and no step is probed twice."""
    import threading
    import time

    import pytest

    from packetwalk import walk as walk_module
    from packetwalk.diagnose.diagnoser import Diagnoser
    from packetwalk.hops import HOPS
    from packetwalk.placement import build_placements
    from packetwalk.probes import ExecResult, Prober
    from packetwalk.walk import HopFailure, Walk

    monkeypatch.setattr(walk_module, "NARROW_EARLY_AFTER", 0.05)
    lock, asked = threading.Lock(), []

    def fake_exec(src, command, timeout):
        slow = "10.96.12.7" in command[-1]  # the ClusterIP: silent, as a timeout
        with lock:
            asked.append((time.monotonic(), "ClusterIP" if slow else "other"))
        if slow:
            time.sleep(0.3)
            return ExecResult(0, "124 5000000\n", "", 5.0)
        return ExecResult(0, "0 100000 server-pw-worker2\n", "", 0.1)

    inv, prober, notes = inventory(), Prober(fake_exec), []
    walk = Walk(inv, prober, HOPS["cluster_ip"], build_placements([A, B])["cross-node"], None,
                "udp", [].append, {}, Diagnoser(inv, prober, None, notes.append, "t"))
    started = time.monotonic()
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname")
    probed = time.monotonic()
    with pytest.raises(HopFailure) as failure:
        walk.expect(seen)
    # The narrowing's steps were asked while the probe still waited, once each.
    steps = [when for when, what in asked[1:]]
    assert steps and all(started < when < probed for when in steps), (started, probed, asked)
    narrowed = len(asked)
    assert "Narrowed down: ClusterIP fails, pod IPs answer" in str(failure.value)
    assert "pod IP 10.244.2.7:8081/udp from client-pw-worker: OK" in str(failure.value)
    assert len(asked) == narrowed and len(notes) == 1


def test_an_answered_probe_or_one_expected_unanswered_starts_no_narrowing(monkeypatch):
    import time

    from packetwalk import walk as walk_module

    monkeypatch.setattr(walk_module, "NARROW_EARLY_AFTER", 0.05)
    notes = []
    walk, seen = cluster_ip_walk((), notes)  # everything answers at once
    time.sleep(0.15)
    assert seen.cls == "OK" and walk.diagnoser._begun == {}
    # A slow answer, on a hop that expects none (its TIMEOUT passes): nothing begun.
    from packetwalk.diagnose.diagnoser import Diagnoser
    from packetwalk.hops import HOPS
    from packetwalk.placement import build_placements
    from packetwalk.probes import ExecResult, Prober
    from packetwalk.walk import Walk

    def slow_exec(src, command, timeout):
        time.sleep(0.2)
        return ExecResult(0, "124 5000000\n", "", 5.0)

    inv, prober = inventory(), Prober(slow_exec)
    hop = next(h for h in HOPS.values() if "TIMEOUT" in h.accepted)
    blocked = Walk(inv, prober, hop, build_placements([A, B])["cross-node"], None, "tcp",
                   [].append, {}, Diagnoser(inv, prober, None, notes.append, "t"))
    blocked.ask(blocked.client, blocked.cluster_ip(blocked.server_service, "tcp"), "hostname")
    assert blocked.diagnoser._begun == {}
