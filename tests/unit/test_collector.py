"""One fold of the run: the terminal's verdict and the HTML's are the same sentence."""

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from packetwalk import records
from packetwalk.options import Options
from packetwalk.plugin import Controller
from packetwalk.records import DiagnosisRecord, ProbeRecord
from packetwalk.report import html, results
from packetwalk.report.plugin import Collector
from packetwalk.runs import Run

OK = ProbeRecord(hop="pod_ip", placement="same-node", protocol="tcp", client_node="w1",
                 server_node="w1", cls="OK", ok=True, seconds=0.1)
TIMEOUT = replace(OK, hop="cluster_ip", cls="TIMEOUT", ok=False, seconds=3.0)


class Terminal:
    def __init__(self):
        self.lines: list[str] = []

    def section(self, title):
        self.lines.append(f"== {title} ==")

    def write_line(self, line):
        self.lines.append(line)


def feed(collector: Collector, test_id: str, phases, *attached, where=()) -> None:
    """A test's reports as xdist hands them to the controller; `where`: its JUnit
    properties (hop, layer, placement)."""
    item = SimpleNamespace(user_properties=list(where))
    for record in attached:
        records.attach(item, record)
    for when, outcome in phases:
        longrepr = "boom" if outcome == "failed" else None
        collector.pytest_runtest_logreport(pytest.TestReport(
            test_id, ("t.py", 1, test_id), {}, outcome, longrepr, when,
            user_properties=list(item.user_properties)))


def test_terminal_and_html_print_one_verdict_errors_included():
    state = SimpleNamespace(options=Options(), run=Run("abc123"), nodes=[], notes=[],
                            heartbeat=object(), pods_planned=7, watch=None,
                            target=SimpleNamespace(describe=lambda: "the lab"))
    config = SimpleNamespace(stash={})
    collector = Collector(config, state, before=None)
    passed = [("setup", "passed"), ("call", "passed"), ("teardown", "passed")]
    feed(collector, "t::test_pod_ip[same-node-tcp]", passed, OK)
    feed(collector, "t::test_cluster_ip[same-node-tcp]",
         [("setup", "passed"), ("call", "failed"), ("teardown", "passed")],
         TIMEOUT, DiagnosisRecord("ClusterIP fails, pod IPs answer"))
    feed(collector, "t::test_dns[same-node]", [("setup", "failed"), ("teardown", "passed")])
    collector.pytest_sessionfinish(session=None)

    terminal = Terminal()
    Controller(state, config, collector).pytest_terminal_summary(terminal)
    prefix: list = []
    collector.pytest_html_results_summary(prefix, [], [], session=None)

    said = next(line for line in terminal.lines if line.startswith("verdict: "))
    sentence = said.removeprefix("verdict: ")
    assert html.verdict(sentence) in prefix
    assert sentence == results.sentence(collector.results)
    assert sentence.startswith("Service translation (ClusterIP) is broken")
    assert sentence.endswith("1 test could not probe (ERROR): setup, not the network; "
                             "see their pod events.")
    assert "diagnosis: 1 x ClusterIP fails, pod IPs answer" in terminal.lines
    assert "probes: 2, latency p50 1.550s p95 3.000s max 3.000s" in terminal.lines


def test_a_watch_puts_its_timeline_and_its_words_in_the_html():
    from packetwalk.during import Ran
    from packetwalk.watch import WatchResult

    watch = WatchResult("sleep 10", 5.0, 2.0, Ran("sleep 10", 100.0, 110.0, 1))
    state = SimpleNamespace(options=Options(), run=Run("abc123"), nodes=[], notes=[],
                            heartbeat=object(), pods_planned=7, watch=watch,
                            target=SimpleNamespace(describe=lambda: "the lab"))
    collector = Collector(SimpleNamespace(stash={}), state, before=None)
    collector.pytest_sessionfinish(session=None)
    prefix: list = []
    collector.pytest_html_results_summary(prefix, [], [], session=None)
    assert any("watch: CMD exited 1 after 10.0 s: sleep 10" in part for part in prefix)
    assert '<p id="pw-timeline-empty">No cell was watched.</p>' in prefix


def test_records_cross_as_plain_values_and_come_back_typed():
    item = SimpleNamespace(user_properties=[("hop", "cluster_ip")])
    diagnosis = DiagnosisRecord("v", ("a: OK",), (), capture="server never saw the packet",
                                pcaps=("/x.pcap",), packets=(), service=(), retried="OK",
                                capture_path="/x")
    records.attach(item, TIMEOUT)
    records.attach(item, diagnosis)
    assert all(isinstance(v, (str, dict)) for _, v in item.user_properties)
    assert records.read(item.user_properties) == [("hop", "cluster_ip"),
                                                  ("packetwalk", TIMEOUT),
                                                  ("diagnosis", diagnosis)]
    # What tools read back from JUnit: the keys of before, no empty capture fields.
    assert list(DiagnosisRecord("v").to_json()) == ["verdict", "bisection", "policies"]


def test_options_travel_to_workers_unchanged():
    from packetwalk.vantage import ExternalTarget

    targets = (ExternalTarget("10.0.0.1", 80), ExternalTarget("2001:db8::10", 80))
    options = Options(nodes=("a", "b"), external_targets=targets,
                      expected_source_ips=("10.0.0.2",), wait_cleanup=True)
    assert Options.from_json(options.to_json()) == options
    assert Options.from_json(Options().to_json()) == Options()


def test_a_blocked_test_is_red_in_every_output_under_the_layer_that_blocks_it(tmp_path):
    """cross-node-route's MTU: an ERROR (not a failure of path MTU), its own colour in
    the matrix with the blocking layer's name, a new problem in the baseline diff, and
    listed in the verdict under the pod network, which is named once."""
    from packetwalk.records import BlockedRecord
    from packetwalk.report import baseline
    from packetwalk.report.matrix import build

    state = SimpleNamespace(options=Options(), run=Run("abc123"), nodes=[], notes=[],
                            heartbeat=object(), pods_planned=7, watch=None,
                            target=SimpleNamespace(describe=lambda: "the lab"))
    collector = Collector(SimpleNamespace(stash={}), state, before=None)
    pod_failed = replace(OK, placement="cross-node", server_node="w2", cls="TIMEOUT", ok=False)
    feed(collector, "t::test_pod_ip[cross-node-udp]",
         [("setup", "passed"), ("call", "failed"), ("teardown", "passed")], pod_failed)
    blocked = BlockedRecord("pod network (PodIP)", "test_pod_ip[cross-node-udp]",
                            "blocked: the pod network (PodIP) across nodes fails "
                            "(test_pod_ip[cross-node-udp]): a small request fails too")
    mtu = replace(pod_failed, hop="mtu")
    where = (("hop", "mtu"), ("layer", "path MTU"), ("placement", "cross-node"))
    for test in ("t::test_mtu[cross-node-tcp]", "t::test_mtu[cross-node-udp]"):
        # As the plugin reports it: the call report turned into a setup error.
        feed(collector, test, [("setup", "passed"), ("setup", "failed"), ("teardown", "passed")],
             mtu, blocked, where=where)
    collector.pytest_sessionfinish(session=None)

    mtu_result = {r.id: r for r in collector.results}["t::test_mtu[cross-node-udp]"]
    assert (mtu_result.outcome, mtu_result.cls) == ("error", "BLOCKED")
    assert mtu_result.to_json()["blocked_by"] == "pod network (PodIP)"

    sentence = results.sentence(collector.results)
    assert sentence.startswith("pod network (PodIP) is broken (TIMEOUT): look at")
    assert sentence.count("pod network (PodIP)") == 1
    # Not "also failing": the blocked tests' records are not path MTU's verdict.
    assert sentence.endswith(". Blocked by it (not failed; what they stand on fails): "
                             "path MTU (2 tests).")

    matrix = build(collector.results)
    cell = matrix.cell("mtu", "cross-node")
    assert (cell.state, cell.blocked_by) == ("blocked", ["pod network (PodIP)"])
    assert cell.explain()[0] == ("test_mtu[cross-node-tcp]: blocked by pod network (PodIP) "
                                 "(test_pod_ip[cross-node-udp])")
    table = html.matrix_table(matrix)
    assert 'class="pw-cell pw-blocked" data-state="blocked"' in table
    assert "blocked by pod network (PodIP) 0/2" in table

    before = {"t::test_mtu[cross-node-udp]": {"outcome": "passed", "class": "OK", "latency": 0.1}}
    diff = baseline.compare(before, {r.id: r.to_json() for r in collector.results})
    assert ("t::test_mtu[cross-node-udp]", "passed", "blocked by pod network (PodIP)") \
        in diff.new_failures


def test_a_watch_is_written_beside_the_report_and_a_failed_cmd_fails_the_run(tmp_path):
    from packetwalk.during import Ran
    from packetwalk.watch import WatchResult

    watch = WatchResult("no-such-cmd", 5.0, 2.0, Ran("no-such-cmd", 100.0, 100.1, 127))
    state = SimpleNamespace(options=Options(html=str(tmp_path / "run.html")), run=Run("abc123"),
                            nodes=[], notes=[], heartbeat=None, watch=watch, cleaned=True,
                            target=SimpleNamespace(describe=lambda: "the lab"))
    config = SimpleNamespace(stash={})
    controller = Controller(state, config, Collector(config, state, before=None))
    controller._write_watch(watch)
    written = json.loads((tmp_path / "run.watch.json").read_text())
    assert written["run"] == "abc123" and written["ran"]["rc"] == 127
    assert "CMD not found (exit 127)" in (tmp_path / "run.watch.html").read_text()
    assert state.notes[0].startswith("watch: CMD not found (exit 127)")
    assert state.notes[1] == "measured: no cell sent more than one probe"
    assert state.notes[-1] == (f"watch timeline: {tmp_path / 'run.watch.html'}, every window: "
                               f"{tmp_path / 'run.watch.json'}")
    assert finished(controller) == pytest.ExitCode.TESTS_FAILED


def test_with_no_cell_to_watch_cmd_is_not_run_and_the_run_fails(tmp_path):
    from packetwalk.inventory import CORE
    from tests.unit.test_watch import A, B, _inventory

    inventory = _inventory([A, B])
    inventory.errors[CORE] = "pods never became Ready"
    touched = tmp_path / "touched"
    state = SimpleNamespace(options=Options(during=f"touch {touched}",
                                            results_json=str(tmp_path / "run.json")),
                            run=Run("abc123"), nodes=[A, B], inventory=inventory, notes=[],
                            heartbeat=None, watch=None, cleaned=True,
                            target=SimpleNamespace(describe=lambda: "the lab"))
    config = SimpleNamespace(stash={})
    controller = Controller(state, config, Collector(config, state, before=None))
    controller._watch()
    assert not touched.exists() and state.watch.ran is None
    assert state.notes[0].startswith("watch: CMD was not run; ")
    assert "no cell can be watched" in (tmp_path / "run.watch.html").read_text()
    assert finished(controller) == pytest.ExitCode.TESTS_FAILED


def finished(controller) -> int:
    """The exit status once the controller's sessionfinish wrapper ran around a passing run."""
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    wrapper = controller.pytest_sessionfinish(session)
    next(wrapper)
    with pytest.raises(StopIteration):
        wrapper.send(None)
    return session.exitstatus
