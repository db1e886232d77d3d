"""The hop x placement matrix at the top of the report. Pure.

One row per hop (catalogue order, i.e. bottom of the walk first), one column
per placement; hops without a placement axis land in the ANY column. A cell
is red when any of its tests failed, flaky (its own colour) when the only
failures in it are flaky (some attempts passed), error when a probe could not
run, blocked (a colour of its own, with the blocking layer's name) when a hop it
stands on fails below it, green when something passed, skipped only when
everything in it skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packetwalk.hops import HOPS, PLACEMENTS
from packetwalk.report.results import ERROR, FAILED, FLAKY, PASSED, SKIPPED, TestResult

ANY = "any"  # the column of hops that have no placement axis
BLOCKED = "blocked"  # a cell state: an error that is a blocked test
STATE_ORDER = (FAILED, FLAKY, ERROR, BLOCKED, PASSED, SKIPPED)  # the first one present colours the cell


def state_of(test: TestResult) -> str:
    """A test's state in the matrix: its outcome, BLOCKED for a blocked error, or
    FLAKY for a failure that was only flaky."""
    if test.blocked is not None:
        return BLOCKED
    return FLAKY if test.flaky else test.outcome


def flaky_words(test: TestResult) -> str:
    """'flaky: 1 of 3 attempts failed (TIMEOUT)' of its first wrong cell, '' if none."""
    wrong = next((r for r in test.records if not r.ok), None)
    return wrong.attempt_words() if wrong is not None else ""


@dataclass
class Cell:
    tests: list[TestResult] = field(default_factory=list)

    @property
    def state(self) -> str:
        states = {state_of(t) for t in self.tests}
        return next(state for state in STATE_ORDER if state in states)

    @property
    def blocked_by(self) -> list[str]:
        """The layers blocking its blocked tests, each once, in the tests' order."""
        return list(dict.fromkeys(t.blocked.layer for t in sorted(self.tests, key=lambda t: t.id)
                                  if t.blocked is not None))

    def counts(self) -> str:
        passed = sum(t.outcome == PASSED for t in self.tests)
        return f"{passed}/{len(self.tests)}"

    def explain(self) -> list[str]:
        """One line per test: id, outcome, and the class or skip reason."""
        lines = []
        for test in sorted(self.tests, key=lambda t: t.id):
            name = test.id.rsplit('::', 1)[-1]
            if test.blocked is not None:
                lines.append(f"{name}: blocked by {test.blocked.layer} ({test.blocked.test})")
                continue
            why = test.reason if test.outcome == SKIPPED else test.cls
            if test.flaky:
                why = f"{why}; {flaky_words(test)}"
            lines.append(f"{name}: {state_of(test)} ({why})")
        return lines


@dataclass
class Matrix:
    rows: list[str]  # hop names
    columns: list[str]
    cells: dict[tuple[str, str], Cell]

    def cell(self, hop: str, column: str) -> Cell | None:
        return self.cells.get((hop, column))


def build(results: list[TestResult]) -> Matrix:
    cells: dict[tuple[str, str], Cell] = {}
    for result in results:
        if result.hop is None:
            continue
        column = result.placement or ANY
        cells.setdefault((result.hop, column), Cell()).tests.append(result)
    present = {column for _, column in cells}
    columns = [p for p in PLACEMENTS if p in present] + ([ANY] if ANY in present else [])
    rows = [name for name in HOPS if any((name, c) in cells for c in columns)]
    return Matrix(rows, columns, cells)
