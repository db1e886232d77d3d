"""A watched cell's probes as outages: windows, the longest, what was lost, the state at
the end, and the verdict against --max-outage. Pure.

A watch (`--during CMD`) probes each cell every INTERVAL seconds from inside its client
pod while CMD changes the cluster (watchloop.py); each probe leaves the time it was sent,
on the pod's clock, and how it ended. Here those become Samples on the controller's
clock (the pod's time less the offset measured by `clock_offset`), and the Samples
become outage windows relative to CMD's start.

A window is a run of consecutive lost probes. It starts when its first lost probe was
sent and ends when the next answered probe was sent: the network broke somewhere after
the last answered send and before the first lost one, and healed after the last lost
send and before the next answered one, so each edge is late by less than one interval
and the duration is within one interval of the truth (plus the clock error, which moves
both edges alike and so shifts the window without changing its length).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import NamedTuple

INTERVAL = 0.2  # seconds between the sends of one cell's probes (the issue asks 200 ms or better)
# A stretch this many intervals long without a send is a gap in what was seen (the loop
# stalled: a throttled pod, a node under load), not an outage of the network.
GAP_INTERVALS = 5


class Sample(NamedTuple):
    """One probe of a watched cell: when it was sent (seconds, the controller's clock)
    and how it ended (its class; `ok`: the cell's expected answer came back)."""

    sent: float
    ok: bool
    cls: str


class Offset(NamedTuple):
    """A pod's clock against the controller's: pod time - controller time, and the most
    that can be wrong by (half the round trip that read it)."""

    offset: float
    error: float


def clock_offset(before: float, pod: float, after: float) -> Offset:
    """The pod's clock read by one exec that the controller's clock bracketed
    (`before` the exec was sent, `after` its answer came back): the pod read its clock
    somewhere in between, so the middle is wrong by half the round trip at most."""
    return Offset(pod - (before + after) / 2, (after - before) / 2)


def joined(start: Offset, end: Offset) -> Offset:
    """The offset read at the watch's start and again at its end: the start's, with an
    error that also covers the drift between them (the samples use one offset)."""
    return Offset(start.offset, max(start.error, end.error) + abs(end.offset - start.offset))


@dataclass(frozen=True)
class Window:
    """One outage: seconds relative to CMD's start. `open`: still lost when the watch
    ended (its end is the last send, not a recovery)."""

    start: float
    end: float
    lost: int
    classes: tuple[str, ...]  # the lost probes' classes, each once, in the order seen
    open: bool = False

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    def words(self) -> str:
        until = "the end of the watch" if self.open else f"{self.end:+.1f} s"
        return (f"{self.duration:.1f} s from {self.start:+.1f} s to {until} "
                f"({self.lost} lost: {', '.join(self.classes)})")

    def to_json(self) -> dict:
        return {**asdict(self), "classes": list(self.classes), "duration": self.duration}


@dataclass(frozen=True)
class CellWatch:
    """What one cell saw during the watch."""

    sent: int
    lost: int
    windows: tuple[Window, ...]
    first: float | None  # the first and last send, relative to CMD's start
    last: float | None
    rate: float  # probes sent per second, achieved
    max_gap: float  # the longest time between two sends
    clock_error: float  # seconds the times may be off by (clock_offset)
    end_class: str  # the last probe's class ("" when none was sent)

    @property
    def longest(self) -> Window | None:
        return max(self.windows, key=lambda w: w.duration, default=None)

    @property
    def longest_seconds(self) -> float:
        return self.longest.duration if self.longest else 0.0

    @property
    def broken_at_end(self) -> bool:
        return bool(self.windows) and self.windows[-1].open

    def gaps(self, interval: float = INTERVAL) -> bool:
        """Whether the loop stalled: a stretch of GAP_INTERVALS without a send."""
        return self.max_gap > GAP_INTERVALS * interval

    def failures(self, max_outage: float) -> list[str]:
        """Why the cell fails, one line each; none: it passes."""
        if not self.sent:
            return ["no probe was sent: the cell's probe loop never ran"]
        found = []
        longest = self.longest
        if longest is not None and longest.duration > max_outage:
            found.append(f"longest outage {longest.words()} exceeds --max-outage "
                         f"{max_outage:g} s")
        if self.broken_at_end:
            found.append(f"broken at the end: every probe since {self.windows[-1].start:+.1f} s "
                         f"was lost ({self.end_class})")
        return found

    def summary(self) -> str:
        """'42 sent, 5 lost, 1 outage, longest 1.0 s; 4.9/s, largest gap 0.25 s, clock ±0.01 s'."""
        count = len(self.windows)
        outages = f"{count} outage{'s' if count != 1 else ''}"
        if self.longest is not None:
            outages += f", longest {self.longest_seconds:.1f} s"
        return (f"{self.sent} sent, {self.lost} lost, {outages}; {self.rate:.1f}/s, largest gap "
                f"{self.max_gap:.2f} s, clock ±{self.clock_error:.3f} s")

    def to_json(self) -> dict:
        return {"sent": self.sent, "lost": self.lost, "longest_outage": self.longest_seconds,
                "broken_at_end": self.broken_at_end, "end_class": self.end_class,
                "first": self.first, "last": self.last, "rate": self.rate,
                "max_gap": self.max_gap, "clock_error": self.clock_error,
                "windows": [w.to_json() for w in self.windows]}

    @staticmethod
    def from_json(data: dict) -> CellWatch:
        windows = tuple(Window(w["start"], w["end"], w["lost"], tuple(w["classes"]), w["open"])
                        for w in data["windows"])
        return CellWatch(data["sent"], data["lost"], windows, data["first"], data["last"],
                         data["rate"], data["max_gap"], data["clock_error"], data["end_class"])


def watch_of(samples: list[Sample], cmd_start: float, clock_error: float = 0.0) -> CellWatch:
    """Samples (any order) -> the cell's watch, times relative to `cmd_start`."""
    ordered = sorted(samples, key=lambda s: s.sent)
    windows: list[Window] = []
    run: list[Sample] = []
    for sample in ordered:
        if not sample.ok:
            run.append(sample)
            continue
        if run:
            windows.append(_window(run, sample.sent, cmd_start, False))
            run = []
    if run:
        windows.append(_window(run, run[-1].sent, cmd_start, True))
    sends = [s.sent for s in ordered]
    span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
    gaps = [b - a for a, b in pairwise(sends)]
    return CellWatch(
        sent=len(ordered), lost=sum(1 for s in ordered if not s.ok), windows=tuple(windows),
        first=round(sends[0] - cmd_start, 3) if sends else None,
        last=round(sends[-1] - cmd_start, 3) if sends else None,
        rate=round((len(sends) - 1) / span, 2) if span else 0.0,
        max_gap=round(max(gaps, default=0.0), 3), clock_error=round(clock_error, 4),
        end_class=ordered[-1].cls if ordered else "")


def _window(run: list[Sample], end: float, cmd_start: float, still_open: bool) -> Window:
    classes = tuple(dict.fromkeys(s.cls for s in run))
    return Window(round(run[0].sent - cmd_start, 3), round(end - cmd_start, 3), len(run),
                  classes, still_open)
