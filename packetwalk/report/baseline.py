"""This run against an earlier one (before and after an upgrade). Pure.

New failures: failing or erroring now, not before (a test the baseline did
not have counts too: it is new and red). A blocked test is an error: red, and
labelled with the layer that blocks it. Fixed: failing or erroring before,
passing now. Latency regressions: passing both times and now slower by
LATENCY_FACTOR and by at least LATENCY_MIN_DELTA seconds, so a probe going
from 5 ms to 12 ms is not news but one going from 0.1 s to 3 s is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_FACTOR = 2.0
LATENCY_MIN_DELTA = 0.2  # seconds
RED = ("failed", "error")


@dataclass
class Diff:
    new_failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, before, now
    fixed: list[tuple[str, str]] = field(default_factory=list)  # id, before
    slower: list[tuple[str, float, float]] = field(default_factory=list)  # id, before, now
    missing: list[str] = field(default_factory=list)  # in the baseline, not run now

    @property
    def empty(self) -> bool:
        return not (self.new_failures or self.fixed or self.slower or self.missing)

    def lines(self) -> list[str]:
        out = [f"new failure: {test} ({before} -> {now})" for test, before, now in
               self.new_failures]
        out += [f"fixed: {test} (was {before})" for test, before in self.fixed]
        out += [f"slower: {test} {before:.3f}s -> {now:.3f}s" for test, before, now in
                self.slower]
        out += [f"not run this time: {test}" for test in self.missing]
        return out or ["no difference"]


def _label(entry: dict | None) -> str:
    if entry is None:
        return "absent"
    if entry.get("blocked_by"):
        return f"blocked by {entry['blocked_by']}"
    if entry.get("flaky"):  # results of schema 1 written before attempts have no such key
        return (f"flaky {entry['class']}, {entry['failed_attempts']} of {entry['attempts']} "
                "attempts failed")
    return entry["outcome"] if entry["class"] in ("OK", entry["outcome"].upper()) \
        else f"{entry['outcome']} {entry['class']}"


def compare(before: dict[str, dict], now: dict[str, dict]) -> Diff:
    """Both as {test id: {"outcome", "class", "latency"}} (results.load)."""
    diff = Diff()
    for test in sorted(now):
        entry, old = now[test], before.get(test)
        was_red = old is not None and old["outcome"] in RED
        if entry["outcome"] in RED and not was_red:
            diff.new_failures.append((test, _label(old), _label(entry)))
        elif was_red and entry["outcome"] == "passed":
            diff.fixed.append((test, _label(old)))
        elif (old is not None and entry["outcome"] == old["outcome"] == "passed"
              and entry["latency"] > old["latency"] * LATENCY_FACTOR
              and entry["latency"] - old["latency"] >= LATENCY_MIN_DELTA):
            diff.slower.append((test, old["latency"], entry["latency"]))
    diff.missing = sorted(set(before) - set(now))
    return diff
