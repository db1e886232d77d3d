"""A walk's judgement and its failure story, with a fake exec (no cluster)."""

import pytest

from packetwalk.hops import HOPS
from packetwalk.inventory import Inventory, Pod, Service
from packetwalk.placement import Node, build_placements
from packetwalk.probes import ExecResult, Prober
from packetwalk.walk import HopFailure, Walk

A, B = Node("pw-worker", "10.250.0.11", "pw-worker"), Node("pw-worker2", "10.250.0.12", "pw-worker2")


def inventory():
    pods = {name: Pod(name, "pw-1", role, node, ip, 8080) for name, role, node, ip in (
        ("client-pw-worker", "client", "pw-worker", "10.244.1.5"),
        ("server-pw-worker", "server", "pw-worker", "10.244.1.6"),
        ("server-pw-worker2", "server", "pw-worker2", "10.244.2.7"))}
    services = {"server-pw-worker2": Service("server-pw-worker2", "pw-1", "10.96.12.7",
                                             {"http": 8080, "udp": 8081}, {"http": 30080},
                                             ("server-pw-worker2",))}
    return Inventory("1", "pw-1", "pw-1-peer", [A, B], "10.96.0.10", pods, services,
                     groups={name: "core" for name in pods})


def walk_with(stdout, hop="cluster_ip", protocol="udp", records=None):
    def fake_exec(src, command, timeout):
        return ExecResult(0, stdout, "", 5.0)

    return Walk(inventory(), Prober(fake_exec), HOPS[hop], build_placements([A, B])["cross-node"],
                None, protocol, (records if records is not None else []).append, {})


def test_failure_tells_the_whole_story():
    records = []
    walk = walk_with("124 5000000\n", records=records)  # `timeout` ended the wait: no answer
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname",
                    answer=walk.server.name)
    with pytest.raises(HopFailure) as failure:
        walk.expect(seen)
    story = str(failure.value)
    assert story.startswith("cluster_ip [cross-node-udp]: Service translation (ClusterIP)")
    assert "client-pw-worker (10.244.1.5) -> 10.96.12.7:8081/udp on pw-worker" in story
    assert "expected: OK" in story and "observed: TIMEOUT after 5.00s" in story
    assert "kubectl -n pw-1 exec client-pw-worker -- bash -c" in story
    assert "next:     try the PodIP: test_pod_ip[cross-node-udp]" in story
    assert records[0].ok is False and records[0].placement == "cross-node"


def test_an_answer_from_the_wrong_backend_is_wrong_backend():
    walk = walk_with("0 4000 server-pw-worker\n")
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname",
                    answer=walk.server.name)
    assert seen.cls == "WRONG_BACKEND" and "server-pw-worker2" in seen.detail


def test_snat_is_wrong_source():
    walk = walk_with("0 4000 10.250.0.11:40000\n", hop="source_ip_pod_ip")
    client = walk.client
    seen = walk.ask(client, walk.pod_ip(walk.server, "udp"), "clientip", source_ip=client.ip)
    assert seen.cls == "WRONG_SOURCE" and "10.250.0.11" in seen.detail
