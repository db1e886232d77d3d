"""pytest hooks of the report: JUnit properties, results JSON, baseline, pytest-html.

Registered by packetwalk.plugin only when a run asked for packetwalk. Workers
only tag tests (JUnit properties, pod events on errors); the controller (or
the only process) folds every report once, in the Collector, and writes the
JSON, the HTML's summary, JUnit's verdict and the terminal lines from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

from packetwalk import apiretry, records
from packetwalk.hops import hop_of
from packetwalk.inventory import WorkloadError
from packetwalk.probes import ProbeError
from packetwalk.report import (
    attachments,
    baseline,
    enforcement,
    facts,
    html,
    junit,
    podevents,
    results,
    timeline,
)
from packetwalk.report.matrix import build
from packetwalk.vantage import lab_present

JUNIT_VERDICT = "packetwalk verdict"  # the testsuite property that carries the verdict


def load_baseline(path: str | None) -> dict[str, dict] | None:
    """--baseline's results; ValueError (one line) if it cannot be read as one."""
    if not path:
        return None
    try:
        return results.load(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"--baseline {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--baseline {path}: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before skip marks are evaluated, so skipped cells have a hop and placement too."""
    callspec = getattr(item, "callspec", None)
    item.user_properties += junit.properties(hop_of(item), callspec.params if callspec else {})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """An error (the probe could not run) carries the run's recent pod events; a test
    that ran, its attempts or its watch (the teardown report, which junitxml reads,
    copies them)."""
    report = yield
    if call.when == "call":
        typed = records.read(item.user_properties)
        item.user_properties += junit.attempt_properties(records.of_kind(typed,
                                                                         records.ProbeRecord))
        item.user_properties += junit.watch_properties(records.of_kind(typed,
                                                                       records.WatchRecord))
    if call.excinfo is not None and call.excinfo.errisinstance((ProbeError, WorkloadError)):
        from packetwalk.plugin import state_of  # the engine plugin imports this module

        state = state_of(item.config)
        if state is not None and state.inventory is not None:
            entry = ("pod events", _pod_events(state, call.excinfo.value))
            # Each report copies user_properties: the later teardown report needs it too.
            item.user_properties.append(entry)
            report.user_properties.append(entry)
    return report


def _pod_events(state, error: BaseException) -> str:
    """The run's recent pod events; none asked for when the API server is gone."""
    gone = state.outage or apiretry.unreachable(error)
    if gone:
        return f"events unavailable: {apiretry.OUTAGE} ({gone})"
    try:
        return podevents.recent(apiretry.client(state.configuration),
                                state.inventory.namespaces)
    except Exception as exc:  # noqa: BLE001 - an extra on an error report must not raise
        return f"events unavailable: {apiretry.describe(exc)}"


def _facts(state) -> dict[str, str]:
    """Cluster facts for the HTML; one row saying why when the API server is gone. The
    IP families were read at preflight (families.py): shown either way."""
    families = {"IP families": state.families_note} if state.families_note else {}
    gone = apiretry.answering(state.configuration)
    if gone is not None:
        return {"cluster facts": f"unavailable: {apiretry.OUTAGE} ({gone})", **families}
    try:
        return {**facts.gather(apiretry.client(state.configuration), state.dns_ip,
                               lab_present([n.ip for n in state.nodes]),
                               facts.RunPods(state.configuration, state.inventory)),
                **families}
    except Exception as exc:  # noqa: BLE001 - the report is written whatever the facts do
        return {"cluster facts": f"unavailable: {apiretry.describe(exc)}", **families}


class Collector:
    """Controller side: every report of every test, folded once; everything written from it."""

    def __init__(self, config: pytest.Config, state, before: dict[str, dict] | None):
        self.config, self.state, self.options = config, state, state.options
        self.before = before
        self.fold = results.Fold()
        self.results: list[results.TestResult] = []
        self.diff: baseline.Diff | None = None
        self.facts: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.fold.add(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Before pytest-html and junitxml write their files, and before the run's cleanup."""
        self.results = self.fold.results()
        state, path = self.state, self.options.results_json
        if path is not None:
            results.write(Path(path), state.run.id, self.results)
        if self.before is not None:
            self.diff = baseline.compare(self.before, {r.id: r.to_json() for r in self.results})
        if self.options.html:
            self.facts = _facts(state)
        xml = self.config.stash.get(xml_key, None)  # --junitxml
        if xml is not None and self.results:
            xml.add_global_property(JUNIT_VERDICT, results.sentence(self.results))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list,
                                    session: pytest.Session) -> None:
        prefix += [html.STYLE, html.verdict(results.sentence(self.results)),
                   *html.notes(enforcement.lines(self.results), "pw-enforcement"),
                   html.matrix_table(build(self.results))]
        watch = self.state.watch
        if watch is not None:
            prefix += [*html.notes([watch.words(), watch.measured(), *watch.notes], "pw-watch"),
                       timeline.render(timeline.rows_of(watch), watch.cmd_end, watch.command)]
        if self.diff is not None:
            prefix.append(html.baseline_block(self.diff, self.options.baseline))
        if self.facts:
            prefix.append(html.facts_table(self.facts))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list) -> None:
        """The test's detail, once: on its call report, or on the setup that ended it."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            data.insert(0, html.test_detail(self.fold.result(report.nodeid),
                                            attachments.pcap_link))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.options.results_json is None and self.diff is None:
            return
        terminalreporter.section("packetwalk report")
        if self.options.results_json is not None:
            terminalreporter.write_line(f"results: {self.options.results_json}")
        if self.diff is not None:
            terminalreporter.write_line(f"compared with {self.options.baseline}:")
            for line in self.diff.lines():
                terminalreporter.write_line(f"  {line}")
