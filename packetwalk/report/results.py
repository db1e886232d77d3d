"""One result per test, folded from its pytest reports; and the results JSON. Pure.

A test's outcome: error if setup or teardown failed (the probe could not
run, or it was blocked: a hop it stands on fails below it), failed if its call
failed, skipped, or passed. Its class: the first unexpected observation's class,
OK when passed, BLOCKED for a blocked test, ERROR/SKIPPED/FAILED else.
Its latency: the seconds its probes took, summed. Its attempts (--attempts, see
packetwalk/attempts.py): how many its probe cells made and how many failed, whether
it failed only as flaky (every wrong cell had attempts that passed too), and p50/p99
over every attempt's seconds. A watched cell (--during) has its watch: sent, lost, the
longest outage, the state at the end and every outage window.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from packetwalk import records as rec
from packetwalk import verdict
from packetwalk.attempts import percentile
from packetwalk.records import BlockedRecord, DiagnosisRecord, ProbeRecord, WatchRecord

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
FLAKY = "flaky"  # a failed test whose every wrong cell is flaky: the matrix's own colour
BLOCKED = "BLOCKED"  # the class of an error that is a blocked test
# The JUnit properties a test carries about itself (report/junit.py): not extras.
CELL_PROPERTIES = ("hop", "placement", "layer", "variant", "protocol", "family", "attempts",
                   "failed_attempts", "flaky", "longest_outage", "lost", "sent")
SCHEMA = 1  # bump when the JSON's meaning changes; baseline refuses other versions


@dataclass
class TestResult:
    id: str
    outcome: str
    cls: str
    latency: float
    hop: str | None = None
    placement: str | None = None
    layer: str | None = None
    reason: str = ""  # skip reason or the failure/error text
    records: list[ProbeRecord] = field(default_factory=list)  # one per probe
    extras: list[tuple[str, object]] = field(default_factory=list)  # diagnosis, pod events
    blocked: BlockedRecord | None = None  # an error because a hop below it fails
    watch: WatchRecord | None = None  # a watched cell (--during): every outage window

    @property
    def diagnoses(self) -> list[DiagnosisRecord]:
        return rec.of_kind(self.extras, DiagnosisRecord)

    @property
    def probes(self) -> list[ProbeRecord]:
        """Its records that are probes (a configuration fact has no seconds)."""
        return [r for r in self.records if r.seconds is not None]

    @property
    def flaky(self) -> bool:
        """Failed, and only as flaky: each wrong probe cell had attempts that passed."""
        return self.outcome == FAILED and rec.only_flaky(self.records)

    def percentiles(self) -> tuple[float | None, float | None]:
        """(p50, p99) of every attempt's seconds."""
        seconds = [s for r in self.probes for s in (r.attempt_seconds or (r.seconds,))
                   if s is not None]
        return percentile(seconds, 0.5), percentile(seconds, 0.99)

    def to_json(self) -> dict:
        made, failed = rec.attempt_totals(self.records)
        p50, p99 = self.percentiles()
        found = {"id": self.id, "outcome": self.outcome, "class": self.cls,
                 "latency": self.latency, "hop": self.hop, "placement": self.placement,
                 "layer": self.layer, "flaky": self.flaky, "attempts": made,
                 "failed_attempts": failed, "p50": p50, "p99": p99}
        if self.blocked is not None:
            found["blocked_by"] = self.blocked.layer
        if self.watch is not None:
            found["watch"] = self.watch.to_json()
        return found


def fold_outcome(phases: list[tuple[str, str]]) -> str:
    """[(when, outcome)] of one test -> its outcome."""
    outcomes = dict(phases)
    if outcomes.get("setup") == "failed" or outcomes.get("teardown") == "failed":
        return ERROR
    if SKIPPED in outcomes.values():
        return SKIPPED
    if outcomes.get("call") == "failed":
        return FAILED
    return PASSED if outcomes.get("call") == "passed" else ERROR


def class_of(outcome: str, records: list[ProbeRecord], blocked: bool = False) -> str:
    wrong = next((r.cls for r in records if not r.ok), None)
    if outcome == ERROR and blocked:
        return BLOCKED
    if outcome == PASSED:
        return "OK"
    if outcome == FAILED:
        return wrong or "FAILED"
    return outcome.upper()


def latency_of(records: list[ProbeRecord]) -> float:
    return round(sum(r.seconds or 0 for r in records), 3)


def to_document(run_id: str, results: list[TestResult]) -> dict:
    return {"schema": SCHEMA, "run": run_id,
            "tests": [r.to_json() for r in sorted(results, key=lambda r: r.id)]}


def write(path, run_id: str, results: list[TestResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_document(run_id, results), indent=1) + "\n")


def load(text: str) -> dict[str, dict]:
    """A results JSON -> {test id: entry}; ValueError if it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"not a packetwalk results file of schema {SCHEMA}")
    return {entry["id"]: entry for entry in data["tests"]}


def from_reports(test_id: str, phases: list[tuple[str, str]],
                 properties: list[tuple[str, object]], reason: str) -> TestResult:
    """One test's result from its phases, user_properties and reason text."""
    typed = rec.read(properties)
    records = rec.of_kind(typed, ProbeRecord)
    named = {key: value for key, value in typed if key in ("hop", "placement", "layer")}
    outcome = fold_outcome(phases)
    # Only an error can be blocked: a later phase's failure is not the probe's story.
    blocked = next(iter(rec.of_kind(typed, BlockedRecord)), None) if outcome == ERROR else None
    seen: set[str] = set()
    extras = []
    for key, value in typed:
        if key not in (rec.OBSERVATION, rec.BLOCKED, rec.WATCH, *CELL_PROPERTIES) \
                and repr((key, value)) not in seen:
            seen.add(repr((key, value)))
            extras.append((key, value))
    return TestResult(test_id, outcome, class_of(outcome, records, blocked is not None),
                      latency_of(records), hop=named.get("hop"),
                      placement=named.get("placement"), layer=named.get("layer"),
                      reason=reason, records=records, extras=extras, blocked=blocked,
                      watch=next(iter(rec.of_kind(typed, WatchRecord)), None))


def sentence(results: list[TestResult]) -> str:
    """The run's verdict: its probes' layer sentence, the blocked tests under the layer
    that blocks them, and its other errors (setup, not network). Probes of blocked
    tests are not the network's verdict on their own layer: left out of it.
    The terminal, the HTML and JUnit all print this one sentence."""
    probes = [record for result in results if result.blocked is None
              for record in result.records]
    blocked = [verdict.BlockedTest(r.id.rsplit("::", 1)[-1], r.layer or "", r.blocked.layer)
               for r in results if r.blocked is not None]
    errors = sum(r.outcome == ERROR and r.blocked is None for r in results)
    return verdict.summarize(probes, errors=errors, blocked=blocked)


def reason_of(report: Any) -> str:
    """A pytest report's skip reason, or its failure/error text."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext if report.failed else ""


class Fold:
    """The run's reports, folded into one TestResult per test: the one fold the terminal,
    the HTML, the results JSON and JUnit's verdict are all written from."""

    def __init__(self) -> None:
        self.phases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.properties: dict[str, list] = {}
        self.reasons: dict[str, str] = {}

    def add(self, report: Any) -> None:
        """One pytest TestReport (setup, call or teardown of one test)."""
        self.phases[report.nodeid].append((report.when, report.outcome))
        # Each phase's report copies the item's user_properties: the last one has them all.
        self.properties[report.nodeid] = list(report.user_properties)
        if report.skipped or report.failed:
            self.reasons.setdefault(report.nodeid, reason_of(report))

    def result(self, test_id: str) -> TestResult:
        return from_reports(test_id, self.phases[test_id], self.properties.get(test_id, []),
                            self.reasons.get(test_id, ""))

    def results(self) -> list[TestResult]:
        return [self.result(test_id) for test_id in self.phases]
