"""A watched cell judged by its own hop test (--during): no probe now, its outages against
--max-outage, under its usual id; what its report, JUnit and the results JSON carry."""

import pytest

from packetwalk import records as rec
from packetwalk.during import Ran
from packetwalk.hops import HOPS
from packetwalk.outage import Sample, watch_of
from packetwalk.placement import build_placements
from packetwalk.probes import OK, TIMEOUT, ProbeError, Prober
from packetwalk.report import junit, results
from packetwalk.walk import HopFailure, Walk
from packetwalk.watch import WatchResult
from packetwalk.watchcells import plan
from tests.unit.test_watch import A, B, _inventory

CMD_START = 5000.0


def outage_from(start: float, end: float):
    """A cell probed every 0.2 s from -2 s to +20 s, lost from `start` to `end`."""
    samples = [Sample(CMD_START + t / 5, not start <= t / 5 < end, OK if not start <= t / 5 < end
                      else TIMEOUT) for t in range(-10, 101)]
    return watch_of(samples, CMD_START, clock_error=0.002)


def watched(hop: str, placement: str, protocol: str, found: list, watch: WatchResult) -> Walk:
    def no_exec(src, command, timeout):
        raise AssertionError("a watched cell is judged on its watch, never probed again")

    inventory = _inventory([A, B])
    return Walk(inventory, Prober(no_exec), HOPS[hop], build_placements([A, B])[placement],
                None, protocol, found.append, {}, watch=watch)


@pytest.fixture
def watch() -> WatchResult:
    cells = plan(_inventory([A, B]), build_placements([A, B]))
    seen = {c.test: outage_from(99, 99) for c in cells}  # no outage
    seen["test_cluster_ip[cross-node-tcp]"] = outage_from(3.0, 13.0)
    ran = Ran("packetwalk lab fault ...; sleep 10; packetwalk lab heal", CMD_START,
              CMD_START + 13.5, 0)
    return WatchResult(ran.command, 5.0, 2.0, ran, seen, {c.test: c for c in cells})


def kind(found: list, of: type) -> list:
    return [r for r in found if isinstance(r, of)]


def ask_cluster_ip(walk: Walk):
    return walk.ask(walk.client, walk.cluster_ip(walk.server_service, walk.protocol), "hostname",
                    answer=walk.server.name)


def test_an_outage_over_the_bound_fails_the_cell_with_its_windows(watch):
    found = []
    walk = watched("cluster_ip", "cross-node", "tcp", found, watch)
    with pytest.raises(HopFailure) as failure:
        ask_cluster_ip(walk)
    story = str(failure.value)
    assert story.startswith("cluster_ip [cross-node-tcp]: Service translation (ClusterIP)")
    assert "client-pw-worker (10.244.1.5) -> 10.96.2.1:8080/tcp on pw-worker" in story
    assert "every 0.2 s while CMD ran" in story
    assert "  outage:   10.0 s from +3.0 s to +13.0 s (50 lost: TIMEOUT)" in story
    assert "  failed:   longest outage 10.0 s" in story and "exceeds --max-outage 2 s" in story
    (watch_record,) = kind(found, rec.WatchRecord)
    (probe,) = kind(found, rec.ProbeRecord)
    assert watch_record.cell.longest_seconds == 10.0 and watch_record.max_outage == 2.0
    assert (probe.ok, probe.cls, probe.seconds) == (False, TIMEOUT, None)


def test_a_cell_without_an_outage_passes_without_a_probe(watch):
    found = []
    walk = watched("pod_ip", "same-node", "udp", found, watch)
    seen = walk.ask(walk.client, walk.pod_ip(walk.server, "udp"), "hostname",
                    answer=walk.server.name)
    walk.expect(seen)
    assert seen.cls == OK and kind(found, rec.WatchRecord)[0].failures == ()


def test_a_test_asking_another_target_than_its_cell_is_an_error(watch):
    walk = watched("cluster_ip", "cross-node", "tcp", [], watch)
    with pytest.raises(ProbeError) as error:
        walk.ask(walk.client, walk.pod_ip(walk.server, "tcp"), "hostname")
    assert str(error.value) == ("test_cluster_ip[cross-node-tcp] asks client-pw-worker -> "
                                "10.244.2.6:8080/tcp for 'hostname'; the watch probed "
                                "client-pw-worker -> 10.96.2.1:8080/tcp")


def test_a_planned_cell_never_read_back_fails(watch):
    del watch.cells["test_pod_ip[cross-node-udp]"]
    walk = watched("pod_ip", "cross-node", "udp", [], watch)
    with pytest.raises(HopFailure) as failure:
        walk.ask(walk.client, walk.pod_ip(walk.server, "udp"), "hostname")
    assert "no probe was sent: the watch ended before this cell's loop ran" in str(failure.value)


def test_junit_and_the_results_json_carry_the_watch(watch):
    found = []
    with pytest.raises(HopFailure):
        ask_cluster_ip(watched("cluster_ip", "cross-node", "tcp", found, watch))
    watches = kind(found, rec.WatchRecord)
    assert junit.watch_properties(watches) == [("longest_outage", "10.000"), ("lost", "50"),
                                                ("sent", "111")]
    assert junit.watch_properties([]) == []
    properties = [("hop", "cluster_ip"), *junit.watch_properties(watches)]
    holder = type("Item", (), {"user_properties": properties})()
    for record in found:
        rec.attach(holder, record)
    result = results.from_reports("suites/east_west/test_cluster_ip.py::test_cluster_ip"
                                  "[cross-node-tcp]", [("setup", "passed"), ("call", "failed")],
                                  properties, "longest outage ...")
    assert result.extras == [] and result.watch == watches[0]
    entry = result.to_json()
    assert entry["class"] == TIMEOUT and entry["watch"]["failures"][0].startswith("longest")
    (window,) = entry["watch"]["cell"]["windows"]
    assert (window["start"], window["end"], window["duration"]) == (3.0, 13.0, 10.0)
