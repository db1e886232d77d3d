"""A watch: every planned cell probed from its client pod while CMD changes the cluster.

Run by the controller once the run is deployed (plugin.py), before xdist starts its
workers; the workers' hop tests then judge their cells from the result (Walk.ask).

The order, on the controller's clock (time.time()):
1. each client pod's clock is read (clock_offset: bracketed by the controller's, so
   its offset is known to half a round trip) and its loops started (watchloop.py), one
   exec per pod through its kept shell;
2. WARM_UP seconds of probing before CMD, so each row shows the cell working first,
   longer (up to WARM_UP_LIMIT) until every cell's latest probe has answered: pods turn
   Ready before every node's kube-proxy has programmed their Service, and an outage
   that ends before CMD begins is the cluster's, not CMD's;
3. CMD runs (during.py), its start and end on the controller's clock; the loops' lease
   is renewed every RENEW seconds meanwhile;
4. --settle seconds more, longer (up to END_GRACE) while a cell's latest probe was lost:
   one lost probe at the very end reads "broken at the end", and on a busy node a try
   forked late loses its 0.5 s wait now and then (docs/watch.md); a cell still failing
   after END_GRACE is broken at the end;
5. the loops are stopped (their lease ends), their last probes given WAIT to end,
   each pod's clock read again (its drift joins the error) and the lines collected.
Interrupted (Ctrl-C, SIGTERM) anywhere, step 5 still runs and the watch so far is
handed on with the KeyboardInterrupt (its `watch`), to be written like any other.

The pods' times become the controller's by each pod's offset, then relative to CMD's
start: a window's times are as right as the pod's clock against the controller's
(CellWatch.clock_error), and its edges within one INTERVAL of the truth (outage.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from packetwalk import during, watchloop
from packetwalk.outage import INTERVAL, CellWatch, Offset, Sample, clock_offset, joined, watch_of
from packetwalk.probes import OK, WRONG_BACKEND, ExecFn, ProbeError, Source
from packetwalk.watchcells import REQUEST, WatchCell

WARM_UP = 2.0  # seconds of probing before CMD starts
WARM_UP_LIMIT = 15.0  # seconds the warm-up waits at most for every cell to answer
END_GRACE = 3.0  # seconds the watch goes on after --settle while a cell's last probe was lost
LOOK_EVERY = 0.5  # seconds between two looks at the loops' lines while waiting for answers
EXEC_TIMEOUT = 20.0  # seconds one of the watch's execs may take
CLOCK_READS = 3  # reads of a pod's clock, the one of the shortest round trip kept


@dataclass
class WatchResult:
    """The watch, as the workers and the report read it. Times relative to CMD's start."""

    command: str
    settle: float
    max_outage: float
    ran: during.Ran | None = None  # None: not run (nothing to watch, or interrupted first)
    cells: dict[str, CellWatch] = field(default_factory=dict)  # by test id
    planned: dict[str, WatchCell] = field(default_factory=dict)  # by test id
    notes: list[str] = field(default_factory=list)  # what went wrong with the loops
    settled: bool = False  # the settle period ran to its end

    @property
    def cmd_end(self) -> float | None:
        """CMD's end relative to its start (None: it never ended)."""
        if self.ran is None or self.ran.end is None:
            return None
        return round(self.ran.end - self.ran.start, 3)

    def failures(self, test: str) -> list[str]:
        cell = self.cells.get(test)
        if cell is None:
            return ["no probe was sent: the watch ended before this cell's loop ran"]
        return cell.failures(self.max_outage)

    def words(self) -> str:
        """One line: CMD's fate, the settle period, the cells and their outages."""
        cmd = self.ran.words() if self.ran else "CMD was not run"
        broken = sum(1 for test in self.planned if self.failures(test))
        settle = (f"settled {self.settle:g} s" if self.settled
                   else f"interrupted before the {self.settle:g} s settle period ended")
        return (f"watch: {cmd}; {settle}; {len(self.planned)} cells, "
                f"{broken} over --max-outage {self.max_outage:g} s or broken at the end")

    def measured(self) -> str:
        """What the watch achieved: the rate and gaps of its loops, its clocks' error."""
        seen = [c for c in self.cells.values() if c.sent > 1]
        if not seen:
            return "measured: no cell sent more than one probe"
        return (f"measured: every {INTERVAL:g} s asked; {min(c.rate for c in seen):.1f}-"
                f"{max(c.rate for c in seen):.1f} probes/s per cell, largest gap "
                f"{max(c.max_gap for c in seen):.2f} s, clock error at most "
                f"{max(c.clock_error for c in seen):.3f} s")

    def to_json(self) -> dict:
        return {"command": self.command, "settle": self.settle, "max_outage": self.max_outage,
                "ran": self.ran.to_json() if self.ran else None, "cmd_end": self.cmd_end,
                "interval": INTERVAL, "notes": self.notes, "settled": self.settled,
                "planned": {t: c.to_json() for t, c in self.planned.items()},
                "cells": {t: c.to_json() for t, c in self.cells.items()}}

    @staticmethod
    def from_json(data: dict) -> WatchResult:
        return WatchResult(
            data["command"], data["settle"], data["max_outage"],
            during.Ran.from_json(data["ran"]) if data["ran"] else None,
            {t: CellWatch.from_json(c) for t, c in data["cells"].items()},
            {t: WatchCell.from_json(c) for t, c in data["planned"].items()}, data["notes"],
            data["settled"])


class _Pods:
    """The client pods of a watch: their clocks, their loops, their leases."""

    def __init__(self, cells: list[WatchCell], run_exec: ExecFn, clock: Callable[[], float],
                 notes: list[str], directory: str):
        self.cells, self.exec, self.clock, self.notes = cells, run_exec, clock, notes
        self.directory = directory
        self.sources: dict[str, Source] = {c.client.pod: c.client for c in cells}
        self.offsets: dict[str, Offset] = {}
        self.started: set[str] = set()

    def bash(self, pod: str, script: str) -> str:
        result = self.exec(self.sources[pod], ["bash", "-c", script], EXEC_TIMEOUT)
        if result.rc != 0:
            raise ProbeError(f"exit {result.rc}: {(result.stderr or result.stdout).strip()[:300]}")
        return result.stdout

    def read_clock(self, pod: str) -> Offset:
        """The best of CLOCK_READS reads: the first may also open the pod's kept shell
        (a websocket handshake inside the bracket), the later ones are one round trip."""
        reads = []
        for _ in range(CLOCK_READS):
            before = self.clock()
            text = self.bash(pod, watchloop.clock_script())
            reads.append(clock_offset(before, float(text.strip().replace(",", ".")),
                                      self.clock()))
        return min(reads, key=lambda read: read.error)

    def lease_until(self, pod: str) -> int:
        return int(self.clock() + self.offsets[pod].offset) + watchloop.LEASE

    def start(self) -> None:
        for pod in self.sources:
            loops = {c.name: watchloop.loop_script(c.name, c.target, REQUEST, INTERVAL,
                                                   self.directory, c.by_name)
                     for c in self.cells if c.client.pod == pod}
            try:
                self.offsets[pod] = self.read_clock(pod)
                script = watchloop.start_script(loops, self.lease_until(pod), self.directory)
                said = self.bash(pod, script)
                if said.strip() != f"started {len(loops)}":
                    raise ProbeError(f"the loops said {said.strip()[:200]!r}")
                self.started.add(pod)
            except (ProbeError, ValueError) as exc:
                self.notes.append(f"the probe loops in {pod} did not start: {exc}")

    def renew(self) -> None:
        for pod in self.started:
            try:
                self.bash(pod, watchloop.lease_script(self.lease_until(pod), self.directory))
            except ProbeError as exc:  # the next renewal may get through; LEASE allows it
                self.notes.append(f"renewing the lease in {pod} failed: {exc}")

    def stop(self) -> None:
        for pod in self.started:
            try:
                self.bash(pod, watchloop.lease_script(0, self.directory))
            except ProbeError as exc:
                self.notes.append(f"stopping the loops in {pod} failed (they end by their "
                                  f"lease, within {watchloop.LEASE} s): {exc}")

    def _samples(self, pod: str, offset: Offset) -> dict[str, list[Sample]]:
        """The lines the loops of `pod` have written so far, as Samples by test id."""
        cells = [c for c in self.cells if c.client.pod == pod]
        text = self.bash(pod, watchloop.collect_script(self.directory))
        lines = watchloop.parse_collected(text, {c.name: c.target.protocol for c in cells})
        return {cell.test: [_sample(cell, sent - offset.offset, t.cls, t.answer)
                            for sent, t in lines[cell.name]] for cell in cells}

    def unanswered(self) -> list[str]:
        """The started cells whose latest probe so far did not answer (or that sent none),
        by a look at the lines mid-watch. A pod that cannot be read is not waited for:
        collect() notes it."""
        found = []
        for pod in self.started:
            try:
                seen = self._samples(pod, self.offsets[pod])
            except (ProbeError, ValueError):
                continue
            found += [test for test, samples in seen.items()
                      if not samples or not max(samples, key=lambda s: s.sent).ok]
        return found

    def collect(self, cmd_start: float) -> dict[str, CellWatch]:
        """Each started cell's probes on the controller's clock, as a CellWatch."""
        found: dict[str, CellWatch] = {}
        for pod in self.started:
            try:
                offset = joined(self.offsets[pod], self.read_clock(pod))
                seen = self._samples(pod, offset)
            except (ProbeError, ValueError) as exc:
                self.notes.append(f"the probes of {pod} could not be read back: {exc}")
                continue
            for test, samples in seen.items():
                found[test] = watch_of(samples, cmd_start, offset.error)
        return found

    def until_answered(self, limit: float, clock: Callable[[], float]) -> tuple[float, list[str]]:
        """Look at the loops' lines every LOOK_EVERY seconds until every cell's latest
        probe answered, or `limit` seconds passed: the seconds it took, and the cells
        still unanswered then."""
        began = clock()
        while True:
            pending = self.unanswered()
            took = clock() - began
            if not pending or took >= limit:
                return took, pending
            time.sleep(min(LOOK_EVERY, limit - took))


def _sample(cell: WatchCell, sent: float, cls: str, answer: str) -> Sample:
    if cls == OK and answer.strip() != cell.answer:
        return Sample(sent, False, WRONG_BACKEND)
    return Sample(sent, cls == OK, cls)


def run_watch(cells: list[WatchCell], run_exec: ExecFn, command: str, settle: float,
              max_outage: float, clock: Callable[[], float] = time.time,
              warm_up: float = WARM_UP, directory: str = watchloop.DIRECTORY,
              warm_up_limit: float = WARM_UP_LIMIT, end_grace: float = END_GRACE) -> WatchResult:
    """The watch, steps 1 to 5 above. KeyboardInterrupt is raised again once the loops
    are stopped and read back, carrying the WatchResult so far as its `watch`."""
    result = WatchResult(command, settle, max_outage, planned={c.test: c for c in cells})
    pods = _Pods(cells, run_exec, clock, result.notes, directory)
    reference = clock()
    try:
        pods.start()
        during.pause(warm_up, pods.renew, watchloop.RENEW)
        took, pending = pods.until_answered(max(0.0, warm_up_limit - warm_up), clock)
        if pending:
            result.notes.append(
                f"warm-up: {len(pending)} cell(s) had not answered after {warm_up + took:.1f} s, "
                f"CMD began anyway (their outage before CMD is not CMD's): {', '.join(pending)}")
        elif took >= LOOK_EVERY:
            result.notes.append(f"warm-up: {warm_up + took:.1f} s, until every cell answered")
        try:
            result.ran = during.run(command, pods.renew, watchloop.RENEW, clock)
        except KeyboardInterrupt as exc:
            result.ran = getattr(exc, "ran", None)
            raise
        during.pause(settle, pods.renew, watchloop.RENEW)
        result.settled = True
        took, pending = pods.until_answered(end_grace, clock)
        if took >= LOOK_EVERY:
            result.notes.append(
                f"the watch went on {took:.1f} s after the settle period, until "
                + (f"{end_grace:g} s; still failing: {', '.join(pending)}" if pending
                   else "every cell's latest probe answered"))
    except KeyboardInterrupt as exc:
        exc.watch = result
        raise
    finally:
        pods.stop()
        time.sleep(watchloop.WAIT + 0.5)  # the probes in flight write their lines
        if result.ran is not None:
            reference = result.ran.start
        result.cells = pods.collect(reference)
    return result
