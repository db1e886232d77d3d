"""The watch's timeline: one row per cell, time across, CMD's start and end marked,
outages drawn where they were; checked as SVG and as headless chromium draws it."""

import shutil
import struct
import subprocess
import zlib
from xml.etree import ElementTree

import pytest

from packetwalk.outage import Sample, watch_of
from packetwalk.probes import OK, TIMEOUT
from packetwalk.report.timeline import (
    LABEL_W,
    PLOT_W,
    RED,
    Row,
    page,
    render,
    span_of,
    ticks,
)
from tests.report.test_report_browser import FLAGS

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")


def cell(pattern: str, start: float = -2.0, interval: float = 0.2):
    """'.' answered, 'x' lost, one every `interval` from `start` (CMD starts at 0)."""
    return watch_of([Sample(start + i * interval, c == ".", OK if c == "." else TIMEOUT)
                     for i, c in enumerate(pattern)], 0.0)


def rows() -> list[Row]:
    # sends from -2 s to +18 s; the broken cell loses +3..+13 s (the fault's 10 s)
    broken = cell("." * 25 + "x" * 50 + "." * 26)
    return [Row("test_cluster_ip[cross-node-tcp]", broken, failed=True),
            Row("test_pod_ip[cross-node-tcp]", cell("." * 101), failed=False),
            Row("test_node_port[same-node-<udp>&]", cell("." * 90 + "x" * 11), failed=True)]


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_one_row_per_cell_with_its_outages_where_they_were():
    svg = parse(render(rows(), cmd_end=13.5))
    groups = svg.findall(f"{SVG}g")
    assert len(groups) == 3
    labels = [g.find(f"{SVG}text").text for g in groups]
    assert labels == ["test_cluster_ip[cross-node-tcp]", "test_pod_ip[cross-node-tcp]",
                      "test_node_port[same-node-<udp>&]"]  # escaped in the text, read back
    assert [g.find(f"{SVG}text").get("fill") for g in groups] == [RED, "#222", RED]
    bars = [g.findall(f"{SVG}rect") for g in groups]
    assert [len(b) for b in bars] == [1, 0, 1]
    (outage,) = bars[0]
    span = span_of(rows(), 13.5)
    assert (span.start, span.end) == (-2.0, 18.0)
    # +3.0 s to +13.0 s on an axis of 20 s
    assert float(outage.get("x")) == pytest.approx(LABEL_W + 5 / 20 * PLOT_W, abs=0.2)
    assert float(outage.get("width")) == pytest.approx(10 / 20 * PLOT_W, abs=0.3)
    assert "10.0 s from +3.0 s to +13.0 s" in outage.find(f"{SVG}title").text
    assert "the end of the watch" in bars[2][0].find(f"{SVG}title").text  # still lost


def test_cmd_start_and_end_are_marked():
    svg = render(rows(), cmd_end=13.5)
    lines = [e for e in parse(svg).iter(f"{SVG}line") if e.get("class") == "pw-cmd"]
    span = span_of(rows(), 13.5)
    assert [float(e.get("x1")) for e in lines] == [span.x(0.0), span.x(13.5)]
    assert ">CMD start<" in svg and ">CMD end<" in svg
    unended = render(rows(), cmd_end=None)
    assert ">CMD end<" not in unended and "CMD did not end" in unended


def test_ticks_are_whole_steps_across_the_span():
    span = span_of(rows(), 13.5)
    assert ticks(span) == [-2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    assert len(ticks(span_of(rows(), 600.0))) <= 12


def test_no_watched_cell_says_so():
    assert render([], cmd_end=1.0) == '<p id="pw-timeline-empty">No cell was watched.</p>'


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit PNG, as chromium writes them."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6)
    size = 3 if colour == 2 else 4
    raw, stride, rows_, previous = zlib.decompress(data), width * (3 if colour == 2 else 4), [], None
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        up = previous or bytes(stride)
        for i in range(stride):
            a = line[i - size] if i >= size else 0
            b, c = up[i], (up[i - size] if i >= size else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows_.append(bytes(line))
        previous = rows_[-1]
    return width, size, rows_


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                              "chromium): the timeline's screenshot is not checked")
def test_a_real_browser_draws_the_outage_red_where_it_was(tmp_path):
    page = tmp_path / "timeline.html"
    page.write_text(f"<!doctype html><html><body style='margin:0'>"
                    f"{render(rows(), cmd_end=13.5)}</body></html>")
    shot = tmp_path / "timeline.png"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           f"--screenshot={shot}", "--window-size=1100,200",
                           "--hide-scrollbars", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    _, size, pixels = _pixels(shot.read_bytes())
    span = span_of(rows(), 13.5)

    def red_at(x: float, y: int) -> bool:
        r, g, b = pixels[y][int(x) * size:int(x) * size + 3]
        return r > 150 and g < 90 and b < 90

    first_row = 34 + 9  # TOP + ROW_H / 2: the middle of the first row
    assert red_at(span.x(8.0), first_row)  # inside the outage
    assert not red_at(span.x(1.0), first_row) and not red_at(span.x(15.0), first_row)
    assert not any(red_at(span.x(s), first_row + 18) for s in (-1, 3, 8, 13, 17))  # no outage


def test_the_watch_page_has_its_words_notes_and_a_row_per_planned_cell():
    from packetwalk.during import Ran
    from packetwalk.probes import Source, Target
    from packetwalk.watch import WatchResult
    from packetwalk.watchcells import WatchCell

    client = Source("client-w1", "pw-1", "pw-worker", "10.244.1.5")
    planned = {r.label: WatchCell(r.label, f"c{i}", client, Target("10.96.0.1", 80, "tcp"), "s")
               for i, r in enumerate(rows())}
    cells = {r.label: r.watch for r in rows()[:2]}  # the third never read back
    watch = WatchResult("no-such-cmd", 5.0, 2.0, Ran("no-such-cmd", 0.0, 0.01, 127), cells,
                        planned, ["the probes of client-w9 could not be read back: gone"])
    text = page(watch, "abc123")
    assert text.startswith("<!doctype html>") and "CMD not found (exit 127)" in text
    assert "the probes of client-w9 could not be read back: gone" in text
    svg = text[text.index("<svg"):text.index("</svg>") + 6]
    groups = parse(svg).findall(f"{SVG}g")
    assert [g.find(f"{SVG}text").get("fill") for g in groups] == [RED, "#222", RED]
    assert "no probe sent" in svg  # the row of the cell never read back
