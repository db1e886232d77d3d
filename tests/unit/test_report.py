"""The report's pure parts: results folding and JSON, baseline diff, matrix, SVG, JUnit."""

import json
from pathlib import Path

import pytest

from packetwalk.hops import HOPS
from packetwalk.records import DiagnosisRecord, ProbeRecord
from packetwalk.report import baseline, junit, results
from packetwalk.report.html import matrix_table
from packetwalk.report.matrix import ANY, build
from packetwalk.report.svg import RED, path_svg, stations


def result(test_id, outcome, hop="pod_ip", placement="same-node", cls=None, latency=0.1,
           reason=""):
    return results.TestResult(test_id, outcome, cls or results.class_of(outcome, []), latency,
                              hop=hop, placement=placement, reason=reason)


@pytest.mark.parametrize("phases, outcome", [
    ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
    ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
    ([("setup", "failed"), ("teardown", "passed")], "error"),
    ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
    ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
])
def test_fold_outcome(phases, outcome):
    assert results.fold_outcome(phases) == outcome


def test_result_from_reports_keeps_class_latency_and_extras():
    record = {"hop": "cluster_ip", "cls": "REFUSED", "ok": False, "seconds": 0.25}
    props = [("hop", "cluster_ip"), ("layer", "Service"), ("placement", "cross-node"),
             ("packetwalk", {**record, "cls": "OK", "ok": True, "seconds": 0.5}),
             ("packetwalk", record), ("diagnosis", {"verdict": "PodIP works"}),
             ("diagnosis", {"verdict": "PodIP works"})]
    got = results.from_reports("t::x[cross-node-tcp]", [("setup", "passed"),
                                                       ("call", "failed")], props, "boom")
    assert (got.outcome, got.cls, got.latency) == ("failed", "REFUSED", 0.75)
    assert (got.hop, got.placement) == ("cluster_ip", "cross-node")
    assert got.extras == [("diagnosis", DiagnosisRecord("PodIP works"))]  # duplicates from phases


def test_results_json_round_trip(tmp_path: Path):
    path = tmp_path / "out" / "run.json"
    results.write(path, "abc123", [result("b", "failed", cls="TIMEOUT"), result("a", "passed")])
    data = json.loads(path.read_text())
    assert [t["id"] for t in data["tests"]] == ["a", "b"]
    assert data["tests"][1] == {"id": "b", "outcome": "failed", "class": "TIMEOUT",
                                "latency": 0.1, "hop": "pod_ip", "placement": "same-node",
                                "layer": None, "flaky": False, "attempts": 0,
                                "failed_attempts": 0, "p50": None, "p99": None}
    assert set(results.load(path.read_text())) == {"a", "b"}


def test_load_refuses_other_files():
    with pytest.raises(ValueError, match="not a packetwalk results file"):
        results.load('{"tests": []}')


def entry(outcome, latency=0.1, cls=None):
    return {"outcome": outcome, "class": cls or ("OK" if outcome == "passed" else "TIMEOUT"),
            "latency": latency}


def test_baseline_diff():
    before = {"new": entry("passed"), "fixed": entry("failed"), "slow": entry("passed", 0.1),
              "jitter": entry("passed", 0.01), "gone": entry("passed"),
              "still": entry("failed")}
    now = {"new": entry("failed"), "fixed": entry("passed"), "slow": entry("passed", 3.1),
           "jitter": entry("passed", 0.05), "still": entry("failed"),
           "added": entry("error", cls="ERROR")}
    diff = baseline.compare(before, now)
    assert diff.new_failures == [("added", "absent", "error"),
                                 ("new", "passed", "failed TIMEOUT")]
    assert diff.fixed == [("fixed", "failed TIMEOUT")]
    assert diff.slower == [("slow", 0.1, 3.1)]
    assert diff.missing == ["gone"]
    assert "new failure: new (passed -> failed TIMEOUT)" in diff.lines()


def test_baseline_same_run_has_no_difference():
    run = {"a": entry("passed"), "b": entry("failed")}
    diff = baseline.compare(run, run)
    assert diff.empty and diff.lines() == ["no difference"]


def test_matrix_cells_and_columns():
    matrix = build([
        result("x[same-node-tcp]", "passed"), result("x[same-node-udp]", "failed"),
        result("x[cross-node-tcp]", "passed", placement="cross-node"),
        result("lb", "skipped", hop="load_balancer", placement=None, reason="no LB offered"),
        result("plain", "passed", hop=None),
    ])
    assert matrix.columns == ["same-node", "cross-node", ANY]
    assert matrix.rows == ["pod_ip", "load_balancer"]
    assert matrix.cell("pod_ip", "same-node").state == "failed"
    assert matrix.cell("pod_ip", "cross-node").state == "passed"
    skipped = matrix.cell("load_balancer", ANY)
    assert skipped.state == "skipped"
    assert skipped.explain() == ["lb: skipped (no LB offered)"]
    table = matrix_table(matrix)
    assert 'title="lb: skipped (no LB offered)"' in table  # the hover text
    assert "<details><summary>skipped 0/1</summary>" in table  # the click


def test_svg_marks_the_hops_station_red_only_when_failed():
    record = ProbeRecord(src_pod="client-a", client_node="w1", server_node="w1",
                         dst="10.96.0.5:8080/tcp")
    boxes, focus = stations("cluster_ip", record)
    assert [title for title, _ in boxes] == ["client pod", "node", "Service", "node",
                                             "server pod"]
    assert boxes[focus] == ("Service", "10.96.0.5:8080/tcp")
    assert RED in path_svg("cluster_ip", record, failed=True)
    assert RED not in path_svg("cluster_ip", record, failed=False)


def test_svg_merges_a_repeated_node_unless_it_is_the_hops_station():
    boxes, _ = stations("pod_ip", ProbeRecord(client_node="w1", server_node="w1"))
    assert [title for title, _ in boxes] == ["client pod", "node", "node", "server pod"]
    boxes, _ = stations("source_ip_pod_ip", ProbeRecord(client_node="w1", server_node="w1"))
    assert [title for title, _ in boxes] == ["client pod", "node", "server pod"]


def test_junit_properties():
    assert junit.properties(HOPS["cluster_ip"], {"placement": "cross-node",
                                                 "protocol": "udp"}) == [
        ("hop", "cluster_ip"), ("layer", "Service translation (ClusterIP)"),
        ("placement", "cross-node"), ("protocol", "udp")]
    assert junit.properties(None, {}) == []


def flaky_result(test_id="x[same-node-udp]"):
    """A failed test whose one cell passed 2 of 3 attempts."""
    record = ProbeRecord(hop="pod_ip", placement="same-node", cls="TIMEOUT", ok=False,
                         expected=("OK",), seconds=3.0,
                         attempt_classes=("OK", "TIMEOUT", "OK"),
                         attempt_seconds=(0.004, 3.0, 0.006))
    got = result(test_id, "failed", cls="TIMEOUT")
    got.records = [record]
    return got


def test_a_flaky_failure_is_its_own_state_json_junit_and_words():
    flaky = flaky_result()
    assert flaky.flaky
    entry = flaky.to_json()
    assert (entry["outcome"], entry["flaky"], entry["attempts"], entry["failed_attempts"]) == \
        ("failed", True, 3, 1)
    assert (entry["p50"], entry["p99"]) == (0.006, 3.0)
    assert junit.attempt_properties(flaky.records) == [("attempts", "3"), ("failed_attempts", "1"),
                                                       ("flaky", "true")]
    broken = ProbeRecord(cls="TIMEOUT", ok=False, expected=("OK",), seconds=3.0,
                         attempt_classes=("TIMEOUT",) * 3, attempt_seconds=(3.0,) * 3)
    assert junit.attempt_properties([broken]) == [("attempts", "3"), ("failed_attempts", "3")]
    assert junit.attempt_properties([ProbeRecord(cls="WRONG_CONFIG", ok=False)]) == []
    matrix = build([flaky, result("x[same-node-tcp]", "passed")])
    cell = matrix.cell("pod_ip", "same-node")
    assert cell.state == "flaky"
    assert "x[same-node-udp]: flaky (TIMEOUT; flaky: 1 of 3 attempts failed (TIMEOUT))" \
        in cell.explain()
    assert 'class="pw-cell pw-flaky"' in matrix_table(matrix)
    # a real failure beside it colours the cell red
    assert build([flaky, result("x[same-node-tcp]", "failed")]).cell(
        "pod_ip", "same-node").state == "failed"
    passed = {**entry, "outcome": "passed", "class": "OK", "flaky": False}
    assert baseline.compare({"x": passed}, {"x": entry}).new_failures == [("x", "passed",
                                                "flaky TIMEOUT, 1 of 3 attempts failed")]


def test_a_flaky_test_shows_its_attempts_and_an_amber_path():
    from packetwalk.report.html import test_detail
    from packetwalk.report.svg import AMBER
    from packetwalk.report.terminal import lines

    detail = test_detail(flaky_result())
    assert AMBER in detail and RED not in detail
    assert "flaky: 1 of 3 attempts failed (TIMEOUT), p50 0.006s p99 3.000s: OK TIMEOUT OK" \
        in detail
    said = lines([flaky_result()])
    assert "flaky: x[same-node-udp]: flaky: 1 of 3 attempts failed (TIMEOUT)" in said
    assert said[0].startswith("probes: 3, latency p50 0.006s")
