"""The watch as a timeline: one row per watched cell, time across, CMD's start and end
marked, each outage drawn where it was. An inline SVG, no external asset. Pure.

Times are seconds relative to CMD's start (outage.py), so CMD starts at x(0); the axis
runs from the first probe sent to the last. A row's label is its test id, red when the
cell failed; an outage is a red bar (darker when still open at the end) whose tooltip
(an SVG <title>) gives its times, as the results JSON does.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from packetwalk.outage import CellWatch, watch_of
from packetwalk.report.svg import fit
from packetwalk.watch import WatchResult

LABEL_W, PLOT_W, ROW_H, TOP, PAD = 300, 760, 18, 34, 8
RIGHT = 30  # room for the last tick's label
RED, DARK_RED, GREEN, BLUE, GREY = "#c62828", "#7f0000", "#2e7d32", "#1565c0", "#9e9e9e"
NICE_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Row:
    label: str  # the cell's test id
    watch: CellWatch
    failed: bool


@dataclass(frozen=True)
class Span:
    """What the axis covers and where CMD ran, seconds relative to CMD's start."""

    start: float
    end: float
    cmd_end: float | None  # None: CMD never ended (interrupted)

    def x(self, seconds: float) -> float:
        width = max(self.end - self.start, 1e-9)
        return round(LABEL_W + (min(max(seconds, self.start), self.end) - self.start)
                     / width * PLOT_W, 1)


def span_of(rows: list[Row], cmd_end: float | None) -> Span:
    """From the first send (or CMD's start) to the last send (or CMD's end)."""
    firsts = [r.watch.first for r in rows if r.watch.first is not None]
    lasts = [r.watch.last for r in rows if r.watch.last is not None]
    start = min([0.0, *firsts])
    end = max([0.0, *([cmd_end] if cmd_end is not None else []), *lasts])
    return Span(start, end if end > start else start + 1, cmd_end)


def ticks(span: Span, most: int = 12) -> list[float]:
    """Whole multiples of a nice step across the span, at most `most` of them."""
    length = span.end - span.start
    step = next((s for s in NICE_STEPS if length / s <= most), NICE_STEPS[-1])
    first = -(-span.start // step) * step
    count = int((span.end - first) // step) + 1
    return [round(first + i * step, 3) for i in range(count)]


def render(rows: list[Row], cmd_end: float | None, title: str = "") -> str:
    """The timeline as one <svg>; no rows: a line saying so."""
    if not rows:
        return '<p id="pw-timeline-empty">No cell was watched.</p>'
    span = span_of(rows, cmd_end)
    height = TOP + len(rows) * ROW_H + PAD
    width = LABEL_W + PLOT_W + RIGHT
    bottom = TOP + len(rows) * ROW_H
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="pw-timeline" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'font-family="sans-serif">'),
             f"<title>{escape(title or 'outages per cell during CMD')}</title>"]
    for tick in ticks(span):
        x = span.x(tick)
        parts.append(f'<line x1="{x}" y1="{TOP - 4}" x2="{x}" y2="{bottom}" stroke="#eee"/>'
                     f'<text x="{x}" y="{TOP - 6}" text-anchor="middle" font-size="10" '
                     f'fill="#555">{tick:+g} s</text>')
    for index, row in enumerate(rows):
        y = TOP + index * ROW_H
        parts.append(_row(row, y, span))
    for seconds, name in ((0.0, "CMD start"), (cmd_end, "CMD end")):
        if seconds is None:
            continue
        x = span.x(seconds)
        anchor = "start" if name == "CMD start" else "end"
        parts.append(f'<line class="pw-cmd" x1="{x}" y1="{TOP - 16}" x2="{x}" y2="{bottom}" '
                     f'stroke="{BLUE}" stroke-width="2" stroke-dasharray="4 3"/>'
                     f'<text x="{x + (3 if anchor == "start" else -3)}" y="{TOP - 20}" '
                     f'text-anchor="{anchor}" font-size="11" font-weight="bold" '
                     f'fill="{BLUE}">{name}</text>')
    if cmd_end is None:
        parts.append(f'<text x="{width - PAD}" y="{TOP - 20}" text-anchor="end" font-size="11" '
                     f'fill="{RED}">CMD did not end</text>')
    parts.append("</svg>")
    return "".join(parts)


def _row(row: Row, y: float, span: Span) -> str:
    watch, middle = row.watch, y + ROW_H / 2
    colour = RED if row.failed else "#222"
    found = [(f'<g class="pw-row"><title>{escape(row.label)}: {escape(watch.summary())}</title>'
             f'<text x="{LABEL_W - 6}" y="{middle + 4}" text-anchor="end" font-size="11" '
             f'fill="{colour}">{escape(fit(row.label, 48))}</text>')]
    if watch.first is not None and watch.last is not None:
        found.append(f'<line x1="{span.x(watch.first)}" y1="{middle}" x2="{span.x(watch.last)}" '
                     f'y2="{middle}" stroke="{GREEN}" stroke-width="2"/>')
    else:
        found.append(f'<text x="{LABEL_W + 4}" y="{middle + 4}" font-size="10" '
                     f'fill="{GREY}">no probe sent</text>')
    for window in watch.windows:
        left = span.x(window.start)
        bar = max(span.x(window.end) - left, 2)  # a single lost probe still shows
        fill = DARK_RED if window.open else RED
        found.append(f'<rect class="pw-outage" x="{left}" y="{y + 3}" width="{round(bar, 1)}" '
                     f'height="{ROW_H - 6}" fill="{fill}"><title>{escape(window.words())}'
                     f'</title></rect>')
    found.append("</g>")
    return "".join(found)


def rows_of(watch: WatchResult) -> list[Row]:
    """A row per planned cell, in the plan's order; a cell whose loop never ran is a row
    that says so."""
    return [Row(test, watch.cells.get(test) or watch_of([], 0.0), bool(watch.failures(test)))
            for test in watch.planned]


def page(watch: WatchResult, run: str) -> str:
    """The watch on a page of its own (written even when the run is interrupted):
    the timeline, what became of CMD, and what went wrong with the loops."""
    lines = [watch.words(), watch.measured(), *watch.notes]
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<title>packetwalk watch, run {escape(run)}</title></head><body "
            "style=\"font-family:sans-serif\">"
            f"<h3>packetwalk watch, run {escape(run)}: {escape(watch.command)}</h3>"
            f'<p id="pw-watch">{"<br>".join(escape(line) for line in lines)}</p>'
            f"{render(rows_of(watch), watch.cmd_end, watch.command)}</body></html>\n")
