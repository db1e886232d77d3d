"""pytest hooks of the report: JUnit properties, results JSON, baseline, pytest-html.

Loaded with packetwalk.plugin (its pytest_plugins), so it is present before
pytest-html configures itself: that is how --html becomes self-contained by
default. Workers only tag tests (JUnit properties, pod events on errors);
the controller (or the only process) folds results and writes everything.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from packetwalk import verdict
from packetwalk.hops import hop_of
from packetwalk.inventory import WorkloadError
from packetwalk.probes import ProbeError
from packetwalk.report import attachments, baseline, facts, html, junit, podevents, results
from packetwalk.report.matrix import build
from packetwalk.vantage import lab_present


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("packetwalk-report", "packetwalk: report")
    group.addoption("--results-json", metavar="FILE",
                    help="write id, outcome, class and latency of every test as JSON "
                         "(default with --html: the same path ending in .json)")
    group.addoption("--baseline", metavar="FILE",
                    help="an earlier results JSON: list new failures, fixed tests and "
                         "latency regressions in the report and the terminal summary")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # One file a reviewer can open anywhere: pytest-html reads this option in its
    # own pytest_configure, which runs after this one.
    if getattr(config.option, "htmlpath", None):
        config.option.self_contained_html = True
    if hasattr(config, "workerinput"):
        return
    try:
        before = _load_baseline(config.getoption("baseline"))
    except ValueError as exc:
        raise pytest.UsageError(f"packetwalk: {exc}") from None
    config.pluginmanager.register(Collector(config, before), "packetwalk-report")


def _load_baseline(path: str | None) -> dict[str, dict] | None:
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
    """An error (the probe could not run) carries the run's recent pod events."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance((ProbeError, WorkloadError)):
        from packetwalk.plugin import state_of  # the engine plugin imports this module

        state = state_of(item.config)
        if state is not None and state.inventory is not None:
            entry = ("pod events", podevents.recent(
                ApiClient(state.configuration),
                [state.inventory.namespace, state.inventory.peer_namespace]))
            # Each report copies user_properties: the later teardown report needs it too.
            item.user_properties.append(entry)
            report.user_properties.append(entry)
    return report


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext if report.failed else ""


class Collector:
    """Controller side: every report of every test, folded at the end."""

    def __init__(self, config: pytest.Config, before: dict[str, dict] | None):
        self.config, self.before = config, before
        self.phases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.properties: dict[str, list] = {}
        self.reasons: dict[str, str] = {}
        self.results: list[results.TestResult] = []
        self.diff: baseline.Diff | None = None
        self.facts: dict[str, str] = {}
        self.json_path: Path | None = None

    def _result(self, test_id: str) -> results.TestResult:
        return results.from_reports(test_id, self.phases[test_id],
                                    self.properties.get(test_id, []),
                                    self.reasons.get(test_id, ""))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.phases[report.nodeid].append((report.when, report.outcome))
        self.properties[report.nodeid] = list(report.user_properties)
        if report.skipped or report.failed:
            self.reasons.setdefault(report.nodeid, _reason(report))

    def _output_path(self) -> Path | None:
        explicit = self.config.getoption("results_json")
        if explicit:
            return Path(explicit)
        html_path = getattr(self.config.option, "htmlpath", None)
        return Path(html_path).with_suffix(".json") if html_path else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Before pytest-html writes the page and before the run's cleanup."""
        from packetwalk.plugin import state_of

        self.results = [self._result(test_id) for test_id in self.phases]
        self.json_path = self._output_path()
        state = state_of(self.config)
        if self.json_path is not None:
            results.write(self.json_path, state.run.id if state else "", self.results)
        if self.before is not None:
            self.diff = baseline.compare(self.before, {r.id: r.to_json() for r in self.results})
        if state is not None and getattr(self.config.option, "htmlpath", None):
            self.facts = facts.gather(ApiClient(state.configuration), state.dns_ip,
                                      lab_present([n.ip for n in state.nodes]))

    def sentence(self) -> str:
        records = [r for result in self.results for r in result.records]
        errors = sum(result.outcome == results.ERROR for result in self.results)
        return verdict.summarize(records, errors=errors)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list,
                                    session: pytest.Session) -> None:
        prefix += [html.STYLE, html.verdict(self.sentence()), html.matrix_table(
            build(self.results))]
        if self.diff is not None:
            prefix.append(html.baseline_block(self.diff, self.config.getoption("baseline")))
        if self.facts:
            prefix.append(html.facts_table(self.facts))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list) -> None:
        """The test's detail, once: on its call report, or on the setup that ended it."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            data.insert(0, html.test_detail(self._result(report.nodeid), attachments.pcap_link))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.json_path is None and self.diff is None:
            return
        terminalreporter.section("packetwalk report")
        if self.json_path is not None:
            terminalreporter.write_line(f"results: {self.json_path}")
        if self.diff is not None:
            terminalreporter.write_line(f"compared with {self.config.getoption('baseline')}:")
            for line in self.diff.lines():
                terminalreporter.write_line(f"  {line}")
