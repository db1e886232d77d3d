"""A walk's judgement and its failure story, with a fake exec (no cluster)."""

from dataclasses import replace

import pytest

from packetwalk.hops import HOPS
from packetwalk.inventory import Inventory, Pod, Service
from packetwalk.placement import Node, build_placements
from packetwalk.probes import ExecResult, Prober
from packetwalk.walk import HopFailure, Walk, silence_is_chance

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


def walk_with(stdout, hop="cluster_ip", protocol="udp", records=None, attempts=1):
    def fake_exec(src, command, timeout):
        return ExecResult(0, stdout, "", 5.0)

    return Walk(inventory(), Prober(fake_exec), HOPS[hop], build_placements([A, B])["cross-node"],
                None, protocol, (records if records is not None else []).append, {},
                attempts=attempts)


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


def ask_server(lines: str, records: list, attempts: int = 3):
    """(walk, what it saw) of the server's ClusterIP asked, the exec printing `lines`."""
    walk = walk_with(lines, records=records, attempts=attempts)
    return walk, walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname",
                          answer=walk.server.name)


def test_one_attempt_of_three_timing_out_is_a_flaky_failure_with_its_count():
    records = []
    walk, seen = ask_server("0 4000 server-pw-worker2\n124 3001000\n0 6000 server-pw-worker2\n",
                            records)
    assert seen.cls == "TIMEOUT" and seen.attempt_classes == ["OK", "TIMEOUT", "OK"]
    with pytest.raises(HopFailure) as failure:
        walk.expect(seen)
    assert ("  attempts: flaky: 1 of 3 attempts failed (TIMEOUT); p50 0.006s p99 3.001s"
            in str(failure.value))
    record = records[0]
    assert record.flaky and not record.ok and record.attempt_seconds == (0.004, 3.001, 0.006)
    assert (record.cell().attempts, record.cell().failed) == (3, 1)


def test_every_attempt_failing_is_broken_and_every_one_passing_passes():
    walk, seen = ask_server("124 3000000\n" * 3, [])
    with pytest.raises(HopFailure, match="attempts: broken: 3 of 3 attempts failed"):
        walk.expect(seen)
    records = []
    walk, seen = ask_server("0 4000 server-pw-worker2\n" * 3, records)
    walk.expect(seen)
    assert records[0].ok and records[0].cell().p50 == 0.004 and not records[0].flaky


def test_one_attempt_from_the_wrong_backend_fails_the_cell_as_flaky():
    records = []
    _, seen = ask_server("0 4000 server-pw-worker2\n0 4000 server-pw-worker\n"
                         "0 4000 server-pw-worker2\n", records)
    assert seen.cls == "WRONG_BACKEND" and records[0].flaky


def every_backend(*rounds: str):
    """(what it saw, its record, rounds asked) of a two-backend Service asked in rounds,
    the exec printing each of `rounds` in turn."""
    calls, records = [], []

    def fake_exec(src, command, timeout):
        calls.append(command)
        return ExecResult(0, rounds[len(calls) - 1], "", 0.1)

    walk = Walk(inventory(), Prober(fake_exec), HOPS["cluster_ip_backends"],
                build_placements([A, B])["cross-node"], None, "udp", records.append, {},
                attempts=3)
    service = replace(walk.server_service, backends=("server-pw-worker", "server-pw-worker2"))
    seen = walk.ask_every_backend(walk.client, walk.cluster_ip(service, "udp"), service)
    return seen, records[0], len(calls)


ONE, TWO = "0 3000 server-pw-worker\n", "0 3000 server-pw-worker2\n"


def test_every_backend_rounds_go_on_until_each_backend_answered():
    seen, record, rounds = every_backend(TWO * 16, ONE + TWO * 15)
    assert (seen.cls, rounds, len(record.attempt_classes)) == ("OK", 2, 32) and record.ok
    seen, record, rounds = every_backend(TWO * 16, TWO * 16, TWO * 16)
    assert (seen.cls, rounds) == ("PARTIAL_BACKENDS", 3) and not record.flaky


def test_every_backend_a_lost_request_is_flaky_a_backend_never_answering_broken():
    seen, record, rounds = every_backend(ONE + "124 3000000\n" + TWO * 14)
    assert (seen.cls, rounds) == ("TIMEOUT", 1) and record.flaky
    assert record.attempt_words() == "flaky: 1 of 16 attempts failed (TIMEOUT)"
    # Half lost and one backend silent: 1 in 100 by chance after one round, so a second
    # is asked; silent through both (1 in 10,000) is broken.
    seen, record, rounds = every_backend(*["124 3000000\n" * 8 + TWO * 8] * 3)
    assert (seen.cls, rounds) == ("PARTIAL_BACKENDS", 2) and not record.flaky
    assert "never answered" in seen.detail and "no answer within 3 s" in seen.detail
    assert record.attempt_words() == "16 of 32 attempts failed (TIMEOUT)"


LOST = "124 3000000\n"


def test_every_backend_on_a_lossy_path_asks_again_before_calling_a_silent_backend_broken():
    """The CI failure: on a path losing most datagrams, a live backend missed a whole
    round by chance and the cell read broken. It is asked again, and reads flaky."""
    seen, record, rounds = every_backend(TWO * 4 + LOST * 12, ONE + TWO * 3 + LOST * 12)
    assert (seen.cls, rounds) == ("TIMEOUT", 2) and record.flaky
    assert record.attempt_words() == "flaky: 24 of 32 attempts failed (TIMEOUT)"
    # A round where nothing answers ends the asking: more would wait out more timeouts.
    seen, record, rounds = every_backend(LOST * 16, TWO * 16)
    assert (seen.cls, rounds) == ("PARTIAL_BACKENDS", 1) and not record.flaky


def test_a_silent_backend_is_chance_only_while_the_answers_seen_allow_it():
    assert silence_is_chance(4, 16, 2)  # 0.875^16: 12 in 100
    assert not silence_is_chance(16, 32, 2)  # 0.75^32: 1 in 10,000
    assert not silence_is_chance(0, 16, 2)  # nothing answered: no rate to weigh
    # One dead backend of 3 on a clean path: 1 in 400 after one round (another is
    # asked), 1 in 170,000 after two.
    assert silence_is_chance(16, 24, 3) and not silence_is_chance(32, 48, 3)


def test_a_pin_tries_one_at_a_time_and_a_lost_try_reads_flaky_not_broken():
    """Session affinity's first request (Walk.pin): a datagram lost before one answers
    shows as flaky with its count; once one answers, no more are made."""
    answers = iter(["124 5000000\n", "124 5000000\n", "0 4000 server-pw-worker2\n"])
    execs = []

    def fake_exec(src, command, timeout):
        execs.append(command)
        return ExecResult(0, next(answers), "", 0.1)

    records = []
    walk = Walk(inventory(), Prober(fake_exec), HOPS["session_affinity"],
                build_placements([A, B])["cross-node"], None, "udp", records.append, {},
                attempts=5)
    to = walk.cluster_ip(walk.server_service, "udp")
    seen, pinned = walk.pin(walk.client, to, "hostname", answer=("server-pw-worker2",))
    assert len(execs) == 3 and pinned == "server-pw-worker2"
    assert seen.cls == "TIMEOUT" and seen.attempt_classes == ["TIMEOUT", "TIMEOUT", "OK"]
    # One record for the three tries, flaky as the report and the baseline count it.
    assert len(records) == 1 and records[0].flaky
    assert records[0].attempt_words() == "flaky: 2 of 3 attempts failed (TIMEOUT)"
    with pytest.raises(HopFailure) as failure:
        walk.expect(seen)
    assert "flaky: 2 of 3 attempts failed" in str(failure.value)
    # Every try lost: broken, and nothing pinned.
    answers = iter(["124 5000000\n"] * 5)
    seen, pinned = walk.pin(walk.client, to, "hostname", answer=("server-pw-worker2",))
    assert pinned is None and seen.attempt_classes == ["TIMEOUT"] * 5
