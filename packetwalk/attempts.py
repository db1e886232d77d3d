"""A probe cell's attempts, judged together: passed, broken or flaky (k of N). Pure.

One attempt can lose a datagram or meet a conntrack race; one attempt cannot
tell a path that is down from one that drops now and then. So each cell makes
N attempts (--attempts) and is judged on all of them:

- passed: every attempt counted had a class the cell accepts;
- broken: every attempt counted failed the expectation;
- flaky (k/N): k of the N attempts failed. A failure, worded on its own.

A cell that expects a block stops at its first definite refusal (REFUSED, or
UNREACHABLE: ICMP admin-prohibited; RESET too, were a cell to accept it): the
enforcer has answered for itself, and more attempts could only wait
out timeouts. Attempts after it are not counted (callers that ran them
concurrently may pass them anyway). A timeout is an accepted block too, but not
a definite one: it tells nothing a second attempt could not contradict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from packetwalk.probes import REFUSED, RESET, UNREACHABLE

PASSED, BROKEN, FLAKY = "passed", "broken", "flaky"
DEFAULT_ATTEMPTS = 3
MAX_ATTEMPTS = 20  # more is a load test, not a conformance cell
# Answers that settle a blocked cell at once: the enforcer (or the host) said no.
# Each settles only a cell that accepts it (hops.BLOCKED_CLASSES has no RESET).
DEFINITE_DENIALS = frozenset({REFUSED, RESET, UNREACHABLE})


class Attempted(Protocol):
    """What an attempt needs to have for judging: probes.Observation, records.ProbeRecord."""

    cls: str
    seconds: float | None


@dataclass(frozen=True)
class CellResult:
    state: str  # PASSED, BROKEN or FLAKY
    attempts: int  # attempts counted
    failed: int  # of them, how many failed the expectation
    classes: tuple[str, ...]  # each counted attempt's class, in order
    failed_classes: tuple[str, ...]  # the failed attempts' classes, in order
    p50: float | None  # seconds; None when no attempt was timed
    p99: float | None
    first_failed: int | None  # index of the first failed attempt (its evidence is shown)

    @property
    def ok(self) -> bool:
        return self.state == PASSED

    def words(self) -> str:
        """'flaky: 1 of 3 attempts failed (TIMEOUT)', 'broken: 3 of 3 ...', '' when passed."""
        return f"{self.state}: {self.count()}" if not self.ok else ""

    def count(self) -> str:
        """'1 of 3 attempts failed (TIMEOUT)', or 'each of 3 attempts passed'."""
        noun = "attempt" if self.attempts == 1 else "attempts"
        if self.ok:
            return f"each of {self.attempts} {noun} passed"
        return (f"{self.failed} of {self.attempts} {noun} failed "
                f"({', '.join(sorted(set(self.failed_classes)))})")


def counted(classes: Sequence[str], accepted: frozenset[str]) -> int:
    """How many attempts count: all of them, or up to and including the first one that
    is a definite denial the cell accepts (a blocked cell's early answer)."""
    for index, cls in enumerate(classes):
        if _settles(cls, accepted):
            return index + 1
    return len(classes)


def settled(first: Attempted, accepted: frozenset[str]) -> bool:
    """Whether one attempt decides the cell: no further attempt is worth running."""
    return _settles(first.cls, accepted)


def _settles(cls: str, accepted: frozenset[str]) -> bool:
    return cls in DEFINITE_DENIALS and cls in accepted


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): a value that was measured, never interpolated."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def judge(attempts: Sequence[Attempted], accepted: frozenset[str]) -> CellResult:
    """The cell's result from its attempts, in the order they were made."""
    if not attempts:
        raise ValueError("a cell is judged on at least one attempt")
    kept = list(attempts[:counted([a.cls for a in attempts], accepted)])
    failed = [index for index, a in enumerate(kept) if a.cls not in accepted]
    if not failed:
        state = PASSED
    elif len(failed) == len(kept):
        state = BROKEN
    else:
        state = FLAKY
    seconds = [a.seconds for a in kept if a.seconds is not None]
    return CellResult(state, len(kept), len(failed), tuple(a.cls for a in kept),
                      tuple(kept[index].cls for index in failed),
                      _rounded(percentile(seconds, 0.5)), _rounded(percentile(seconds, 0.99)),
                      failed[0] if failed else None)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
