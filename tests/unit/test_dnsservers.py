"""A failed lookup, narrowed down by asking each DNS server pod directly."""

from packetwalk.diagnose.dnsservers import Asked, conclude
from packetwalk.diagnose.narrowing import (
    DNS_NODE,
    DNS_NODE_TRANSPORT,
    DNS_SERVER,
    OTHER_PROTOCOL,
    Attempt,
    plan,
)
from packetwalk.inventory import DnsServer, Inventory, Pod
from packetwalk.placement import Node
from packetwalk.probes import Target

NEAR = Asked("coredns-a", "10.244.0.5", "pw-worker", True, True)
FAR = Asked("coredns-b", "10.244.1.5", "pw-worker2", False, False)


def test_a_server_across_nodes_fails_and_the_run_pods_there_too():
    line = conclude([NEAR, FAR], {"pw-worker2": False}, "pw-worker", "udp", False, False)
    assert line == ("only the DNS server coredns-b (10.244.1.5) on pw-worker2 fails from pw-worker; "
                    "coredns-a (10.244.0.5) on pw-worker answers: the path from pw-worker to "
                    "pw-worker2 (the run's pods there fail too)")


def test_a_server_fails_while_the_run_pods_on_its_node_answer():
    line = conclude([NEAR, FAR], {"pw-worker2": True}, "pw-worker", "udp", False, True)
    assert line.endswith(": those DNS pods themselves (the run's pods on pw-worker2 answer)")


def test_every_server_answers_directly_but_not_through_the_service():
    up = Asked("coredns-b", "10.244.1.5", "pw-worker2", True, True)
    line = conclude([NEAR, up], {}, "pw-worker", "udp", False, None)
    assert "the lookup through the DNS Service does not: Service translation on pw-worker" in line


def test_a_direct_failure_that_does_not_repeat_is_intermittent():
    up = Asked("coredns-b", "10.244.1.5", "pw-worker2", True, True)
    assert "intermittent" in conclude([NEAR, up], {}, "pw-worker", "udp", True, None)


def test_no_server_over_udp_but_all_over_tcp_is_udp_dropped():
    down = [Asked("coredns-a", "10.244.0.5", "pw-worker", False, True),
            Asked("coredns-b", "10.244.1.5", "pw-worker2", False, True)]
    assert "something drops UDP" in conclude(down, {}, "pw-worker", "udp", False, True)


def test_no_server_answers_while_the_run_pods_do_is_cluster_dns():
    down = [Asked("coredns-a", "10.244.0.5", "pw-worker", False, False), FAR]
    assert "cluster DNS is at fault" in conclude(down, {"pw-worker2": True}, "pw-worker", "tcp",
                                                 False, True)


def test_nothing_answers_leaves_it_to_the_layer_walk():
    down = [Asked("coredns-a", "10.244.0.5", "pw-worker", False, False), FAR]
    assert conclude(down, {"pw-worker2": False}, "pw-worker", "tcp", False, False) is None
    assert conclude([], {}, "pw-worker", "tcp", False, True) is None


def test_a_failed_lookup_asks_every_server_both_ways_and_the_run_server_on_their_nodes():
    nodes = [Node("pw-worker", "10.250.0.11", "w1"), Node("pw-worker2", "10.250.0.12", "w2")]
    client = Pod("client-w1", "pw-1", "client", "pw-worker", "10.244.0.9", 8080)
    server2 = Pod("server-w2", "pw-1", "server", "pw-worker2", "10.244.1.9", 8080)
    inv = Inventory("1", "pw-1", "pw-1-peer", nodes, "10.96.0.10",
                    pods={p.name: p for p in (client, server2)},
                    dns_servers=[DnsServer("coredns-a", "kube-system", "pw-worker", "10.244.0.5"),
                                 DnsServer("coredns-b", "kube-system", "pw-worker2", "10.244.1.5")])
    steps = plan(Attempt(client, Target("servers", 53, "udp", "cluster DNS"), "servers"), inv)
    dns = [(s.to.ip, s.to.protocol, s.change) for s in steps if s.kind == DNS_SERVER]
    assert dns == [("10.244.0.5", "udp", ""), ("10.244.0.5", "tcp", OTHER_PROTOCOL),
                   ("10.244.1.5", "udp", ""), ("10.244.1.5", "tcp", OTHER_PROTOCOL)]
    assert all(s.name == "servers" for s in steps if s.kind == DNS_SERVER)
    assert [(s.to.ip, s.change) for s in steps if s.change == DNS_NODE] == [("10.244.1.9", DNS_NODE)]
    # Over UDP, UDP to the run's server on each DNS server's node (pw-worker has none here).
    assert [(s.to.ip, s.to.protocol) for s in steps if s.change == DNS_NODE_TRANSPORT] == [
        ("10.244.1.9", "udp")]
    tcp = plan(Attempt(client, Target("servers", 53, "tcp", "cluster DNS"), "servers"), inv)
    assert not [s for s in tcp if s.change == DNS_NODE_TRANSPORT]
    assert inv.dns_servers_from("pw-worker", True)[0].name == "coredns-a"
    assert [d.name for d in inv.dns_servers_from("pw-worker", False)] == ["coredns-b"]
    assert Inventory.from_json(inv.to_json()).dns_servers == inv.dns_servers
