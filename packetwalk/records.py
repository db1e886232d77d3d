"""What a test leaves on its report: one record per probe, the diagnosis of a failure,
what blocked a blocked test, and a watched cell's outages (--during). Pure.

Records travel in the report's user_properties, which cross xdist and reach
junitxml (it writes each value with str()), so a record is attached as its
plain dict and typed again when read back: `attach` and `read` are the only
two places that see the dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from packetwalk.attempts import FLAKY, CellResult, judge
from packetwalk.outage import CellWatch

OBSERVATION = "packetwalk"  # user_properties key of a ProbeRecord
DIAGNOSIS = "diagnosis"  # user_properties key of a DiagnosisRecord
BLOCKED = "blocked"  # user_properties key of a BlockedRecord
WATCH = "watch"  # user_properties key of a WatchRecord


@dataclass(frozen=True)
class ProbeRecord:
    """One probe of one test: what it saw (probes.Observation's fields), where the test
    stands in the matrix, and whether the class was one the hop accepts."""

    hop: str = ""
    placement: str | None = None
    variant: str | None = None
    protocol: str | None = None
    # The IP family it walked, on a dual-stack run (where ids carry it, families.py);
    # None on a single-stack run and for hops without a family.
    family: str | None = None
    client_node: str = ""
    server_node: str = ""
    cls: str = ""
    ok: bool = True
    expected: tuple[str, ...] = ()  # the classes the hop accepts
    phase: str = ""  # NetworkPolicy cases: baseline, with the policies, after removal
    # NetworkPolicy phases after a change: seconds until every cell held (None: no
    # change before this phase, or it never held within the bound)
    enforced_after: float | None = None
    probe: str = ""
    seconds: float | None = None  # None: a configuration fact, not a probe
    command: str = ""
    output: str = ""
    src_pod: str = ""
    src_node: str = ""
    src_ip: str = ""
    dst: str = ""
    via: str = ""
    response: str = ""
    detail: str = ""
    answers: tuple[str, ...] = ()
    attempt_classes: tuple[str, ...] = ()  # () : one attempt, this record's own
    attempt_seconds: tuple[float | None, ...] = ()

    def cell(self) -> CellResult:
        """The cell judged on its attempts (passed, broken, flaky k/N; p50, p99)."""
        if not self.attempt_classes:
            return judge([Tried(self.cls, self.seconds)], frozenset(self.expected))
        return judge([Tried(cls, seconds) for cls, seconds in
                      zip(self.attempt_classes, self.attempt_seconds, strict=True)],
                     frozenset(self.expected))

    @property
    def flaky(self) -> bool:
        """Failed with one of its attempts' classes while other attempts passed. A
        judgement of the cell as a whole (PARTIAL_BACKENDS: a backend never answered
        in all the attempts) is no attempt's class: the cell is broken, not flaky."""
        cell = self.cell()
        return not self.ok and cell.state == FLAKY and self.cls in cell.failed_classes

    def attempt_words(self) -> str:
        """'flaky: 1 of 3 attempts failed (TIMEOUT)', 'broken: 3 of 3 ...', 'each of 3
        attempts passed', or for a whole-cell failure only the count; '' for one attempt."""
        if not self.attempt_classes:
            return ""
        cell = self.cell()
        whole = not self.ok and self.cls not in cell.failed_classes
        return cell.count() if whole or cell.ok else cell.words()

    def observed(self, seen: Any, ok: bool, expected: set[str] | frozenset[str]) -> ProbeRecord:
        """This cell with a probe's Observation and its judgement."""
        probe = {f.name: getattr(seen, f.name) for f in fields(seen)}
        return replace(self, **{**probe, **{key: tuple(probe[key]) for key in _LISTS}}, ok=ok,
                       expected=tuple(sorted(expected)))

    def to_json(self) -> dict:
        return {**asdict(self), "expected": list(self.expected),
                **{key: list(getattr(self, key)) for key in _LISTS}}

    @staticmethod
    def from_json(data: dict) -> ProbeRecord:
        return ProbeRecord(**{**data, "expected": tuple(data.get("expected", ())),
                              **{key: tuple(data.get(key, ())) for key in _LISTS}})


# The Observation's lists, tuples in a (frozen) record.
_LISTS = ("answers", "attempt_classes", "attempt_seconds")


class Tried(NamedTuple):
    """One attempt as attempts.judge reads it."""

    cls: str
    seconds: float | None


@dataclass(frozen=True)
class DiagnosisRecord:
    """A failed hop narrowed down: the conclusion, the bisection behind it, the policies
    selecting its pods and, with --capture-packets, what the capture showed. `capture` is
    the case seen ("server never saw the packet") or "skipped: <why>"; the fields after it
    exist only when a capture ran."""

    verdict: str = ""
    bisection: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    capture: str | None = None
    capture_path: str | None = None
    retried: str | None = None
    packets: tuple[str, ...] | None = None
    pcaps: tuple[str, ...] | None = None
    service: tuple[str, ...] | None = None

    def to_json(self) -> dict:
        """Flat, readable; absent fields left out (tools read it back from JUnit)."""
        return {f.name: list(value) if isinstance(value, tuple) else value
                for f in fields(self) if (value := getattr(self, f.name)) is not None}

    @staticmethod
    def from_json(data: dict) -> DiagnosisRecord:
        return DiagnosisRecord(**{key: tuple(value) if isinstance(value, list) else value
                                  for key, value in data.items()})


@dataclass(frozen=True)
class BlockedRecord:
    """A test whose probe failed because a hop it stands on fails below it (see
    diagnose/blocking.py): reported as an ERROR, counted under the blocking layer."""

    layer: str = ""  # the blocking layer's name ("pod network (PodIP)")
    test: str = ""  # the id that tests that layer (test_pod_ip[cross-node-udp])
    line: str = ""  # the error's one line, "blocked: ..."

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> BlockedRecord:
        return BlockedRecord(**data)


@dataclass(frozen=True)
class WatchRecord:
    """A watched cell (--during): what it saw while CMD ran (every outage window) and the
    bound it was judged against."""

    cell: CellWatch
    max_outage: float
    failures: tuple[str, ...] = ()  # why it failed, one line each; () : it passed

    def to_json(self) -> dict:
        return {"cell": self.cell.to_json(), "max_outage": self.max_outage,
                "failures": list(self.failures)}

    @staticmethod
    def from_json(data: dict) -> WatchRecord:
        return WatchRecord(CellWatch.from_json(data["cell"]), data["max_outage"],
                           tuple(data["failures"]))


Record = ProbeRecord | DiagnosisRecord | BlockedRecord | WatchRecord
_KEYS: dict[type, str] = {ProbeRecord: OBSERVATION, DiagnosisRecord: DIAGNOSIS,
                          BlockedRecord: BLOCKED, WatchRecord: WATCH}
_TYPES = {key: kind for kind, key in _KEYS.items()}


def attach(node: Any, record: Record) -> None:
    """Leave `record` on a test item (or report): its reports carry it through xdist."""
    node.user_properties.append((_KEYS[type(record)], record.to_json()))


def read(properties: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """A report's user_properties with every record typed again; other entries as they are."""
    return [(key, _TYPES[key].from_json(value) if key in _TYPES and isinstance(value, dict)
             else value) for key, value in properties]


def attempt_totals(records: list[ProbeRecord]) -> tuple[int, int]:
    """(attempts made, of them failed) over a test's probe cells (facts have no seconds)."""
    cells = [r.cell() for r in records if r.seconds is not None]
    return sum(c.attempts for c in cells), sum(c.failed for c in cells)


def only_flaky(records: list[ProbeRecord]) -> bool:
    """A test's records went wrong, and only as flaky: each wrong cell had attempts that passed."""
    wrong = [r for r in records if not r.ok]
    return bool(wrong) and all(r.flaky for r in wrong)


def of_kind(properties: list[tuple[str, object]], kind: type) -> list:
    """The records of one kind (ProbeRecord, DiagnosisRecord, BlockedRecord, WatchRecord)
    in read() properties."""
    return [value for _, value in properties if isinstance(value, kind)]

