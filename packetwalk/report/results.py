"""One result per test, folded from its pytest reports; and the results JSON. Pure.

A test's outcome: error if setup or teardown failed (the probe could not
run), failed if its call failed, skipped, or passed. Its class: the first
unexpected observation's class, OK when passed, ERROR/SKIPPED/FAILED else.
Its latency: the seconds its probes took, summed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
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
    records: list[dict] = field(default_factory=list)  # observations (walk.Walk.record)
    extras: list[tuple[str, object]] = field(default_factory=list)  # diagnosis, pod events

    def to_json(self) -> dict:
        return {"id": self.id, "outcome": self.outcome, "class": self.cls,
                "latency": self.latency, "hop": self.hop, "placement": self.placement,
                "layer": self.layer}


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


def class_of(outcome: str, records: list[dict]) -> str:
    wrong = next((r["cls"] for r in records if not r.get("ok", True)), None)
    if outcome == PASSED:
        return "OK"
    if outcome == FAILED:
        return wrong or "FAILED"
    return outcome.upper()


def latency_of(records: list[dict]) -> float:
    return round(sum(r.get("seconds") or 0 for r in records), 3)


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


RECORD = "packetwalk"  # user_properties key of an observation (plugin.RECORD)


def from_reports(test_id: str, phases: list[tuple[str, str]],
                 properties: list[tuple[str, object]], reason: str) -> TestResult:
    """One test's result from its phases, user_properties and reason text."""
    records = [value for key, value in properties if key == RECORD and isinstance(value, dict)]
    named = {key: value for key, value in properties if key in ("hop", "placement", "layer")}
    outcome = fold_outcome(phases)
    seen: set[str] = set()
    extras = []
    for key, value in properties:
        if key not in (RECORD, "hop", "placement", "layer", "variant", "protocol") \
                and repr((key, value)) not in seen:
            seen.add(repr((key, value)))
            extras.append((key, value))
    return TestResult(test_id, outcome, class_of(outcome, records), latency_of(records),
                      hop=named.get("hop"), placement=named.get("placement"),
                      layer=named.get("layer"), reason=reason, records=records, extras=extras)
