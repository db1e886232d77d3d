"""One fold of the run: the terminal's verdict and the HTML's are the same sentence."""

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


def feed(collector: Collector, test_id: str, phases, *attached) -> None:
    """A test's reports as xdist hands them to the controller."""
    item = SimpleNamespace(user_properties=[])
    for record in attached:
        records.attach(item, record)
    for when, outcome in phases:
        longrepr = "boom" if outcome == "failed" else None
        collector.pytest_runtest_logreport(pytest.TestReport(
            test_id, ("t.py", 1, test_id), {}, outcome, longrepr, when,
            user_properties=list(item.user_properties)))


def test_terminal_and_html_print_one_verdict_errors_included():
    state = SimpleNamespace(options=Options(), run=Run("abc123"), nodes=[], notes=[],
                            heartbeat=object(), pods_planned=7,
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

    options = Options(nodes=("a", "b"), external_target=ExternalTarget("10.0.0.1", 80),
                      expected_source_ips=("10.0.0.2",), wait_cleanup=True)
    assert Options.from_json(options.to_json()) == options
    assert Options.from_json(Options().to_json()) == Options()
