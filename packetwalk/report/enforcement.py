"""How long NetworkPolicy changes took to be enforced, over the run. Pure.

A policy case polls its cells after each change (policies applied, updated,
pods or namespaces relabelled) and records, on the record that converged, the
seconds it took (ProbeRecord.enforced_after). Enforcement is asynchronous in
every CNI; what users need to see is when it is slow, and where.
"""

from __future__ import annotations

import statistics

from packetwalk.report.results import TestResult

# Slower than this reads as slow enforcement: the policy controller lags (a
# full resync, a restart) even though it got there in the end.
SLOW_AFTER = 5.0


def times(results: list[TestResult]) -> list[tuple[float, str]]:
    """(seconds to enforce, test id) of every measured change, slowest first. The
    cells that converged on one change all carry its time: the change counts once."""
    found = {(r.enforced_after, result.id.rsplit("::", 1)[-1])
             for result in results for r in result.records if r.enforced_after is not None}
    return sorted(found, reverse=True)


def lines(results: list[TestResult], slow_after: float = SLOW_AFTER) -> list[str]:
    """'NetworkPolicy enforced after ...' and, when any was slow, which; [] without a case."""
    measured = times(results)
    if not measured:
        return []
    seconds = [s for s, _ in measured]
    slowest, where = measured[0]
    out = [(f"NetworkPolicy enforced after: {len(seconds)} changes, p50 "
            f"{statistics.median(seconds):.1f}s, max {slowest:.1f}s ({where})")]
    slow = [f"{tid} {s:.1f}s" for s, tid in measured if s > slow_after]
    if slow:
        out.append(f"slow NetworkPolicy enforcement (over {slow_after:.0f}s): {', '.join(slow)}")
    return out
