"""HTML fragments for pytest-html: verdict, matrix, facts, baseline, per-test detail. Pure.

Everything user-provided is escaped; pytest-html puts these strings into the
page as HTML (the summary prefix and each test's log area).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from packetwalk.records import DiagnosisRecord, ProbeRecord
from packetwalk.report.baseline import Diff
from packetwalk.report.matrix import BLOCKED, Matrix, flaky_words
from packetwalk.report.results import TestResult
from packetwalk.report.svg import path_svg

STYLE = """<style>
#pw-matrix{border-collapse:collapse;margin:8px 0}
#pw-matrix th,#pw-matrix td{border:1px solid #bbb;padding:3px 8px;text-align:left;
 font-size:13px}
.pw-cell summary{cursor:pointer}
.pw-passed{background:#c8e6c9}.pw-failed{background:#ef9a9a}.pw-error{background:#ffcc80}
.pw-flaky{background:#fff176;background-image:repeating-linear-gradient(45deg,transparent 0 6px,
 #ef9a9a 6px 9px)}
.pw-blocked{background:#ce93d8}
.pw-skipped{background:#e0e0e0;color:#555}.pw-none{background:#fafafa}
#pw-verdict{font-size:15px;padding:6px;border-left:4px solid #1565c0;background:#e3f2fd}
.pw-evidence td{vertical-align:top;padding:1px 6px;font-size:12px}
.pw-evidence pre,.pw-extra pre{white-space:pre-wrap;margin:0}
</style>"""


def verdict(sentence: str) -> str:
    return f'<p id="pw-verdict"><b>Verdict:</b> {escape(sentence)}</p>'


def notes(lines: list[str], element_id: str) -> list[str]:
    """Plain lines under the verdict (none: nothing)."""
    return [f'<p id="{element_id}">{"<br>".join(escape(line) for line in lines)}</p>'] if lines else []


def matrix_table(matrix: Matrix) -> str:
    """Rows hops, columns placements. Hover a cell for its tests; click to list them."""
    if not matrix.rows:
        return '<p id="pw-matrix-empty">No hop test ran.</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in matrix.columns)
    rows = []
    for hop in matrix.rows:
        cells = []
        for column in matrix.columns:
            cell = matrix.cell(hop, column)
            if cell is None:
                cells.append('<td class="pw-none">&mdash;</td>')
                continue
            lines = cell.explain()
            items = "".join(f"<li>{escape(line)}</li>" for line in lines)
            label = cell.state
            if cell.state == BLOCKED:
                label = f"blocked by {', '.join(cell.blocked_by)}"
            cells.append(f'<td class="pw-cell pw-{cell.state}" data-state="{cell.state}" '
                         f'title="{escape(chr(10).join(lines))}"><details><summary>'
                         f'{escape(label)} {cell.counts()}</summary><ul>{items}</ul>'
                         f'</details></td>')
        rows.append(f"<tr><th>{escape(hop)}</th>{''.join(cells)}</tr>")
    return (f'<table id="pw-matrix"><tr><th>hop \\ placement</th>{head}</tr>'
            f'{"".join(rows)}</table>')


def facts_table(facts: dict[str, str]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                   for k, v in facts.items())
    return f'<h3>Cluster facts</h3><table id="pw-facts" class="pw-evidence">{rows}</table>'


def baseline_block(diff: Diff, path: str) -> str:
    items = "".join(f"<li>{escape(line)}</li>" for line in diff.lines())
    return f'<h3>Compared with {escape(path)}</h3><ul id="pw-baseline">{items}</ul>'


def _pre(value: object) -> str:
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    return f"<pre>{escape(str(value))}</pre>"


def _value(value: object, link: Callable[[str], str]) -> str:
    """A key-value table for a diagnosis (its pcaps as links), a <pre> for anything else."""
    if isinstance(value, DiagnosisRecord):
        rows = "".join(
            f"<tr><td>{escape(key)}</td><td>"
            f"{'<br>'.join(link(p) for p in v) if key == 'pcaps' else _pre(v)}</td></tr>"
            for key, v in value.to_json().items())
        return f'<table class="pw-evidence">{rows}</table>'
    return _pre(value)


EVIDENCE_FIELDS = (("probe", "probe"), ("cls", "class"), ("src_pod", "source pod"),
                   ("src_node", "source node"), ("src_ip", "source IP"), ("dst", "destination"),
                   ("via", "via"), ("response", "answer"), ("detail", "detail"),
                   ("seconds", "seconds"), ("command", "command"), ("output", "output"))


def attempts_text(record: ProbeRecord) -> str:
    """'each of 3 attempts passed, p50 0.004s p99 0.006s: OK OK OK' or 'flaky: 1 of 3
    attempts failed (TIMEOUT), p50 ...'; '' for a probe of one attempt."""
    if not record.attempt_classes:
        return ""
    cell = record.cell()
    said = record.attempt_words()
    if cell.p50 is not None and cell.p99 is not None:
        said += f", p50 {cell.p50:.3f}s p99 {cell.p99:.3f}s"
    return f"{said}: {' '.join(record.attempt_classes)}"


def evidence(record: ProbeRecord) -> str:
    shown = [(label, getattr(record, name)) for name, label in EVIDENCE_FIELDS]
    shown.insert(2, ("attempts", attempts_text(record)))
    rows = "".join(f"<tr><td>{label}</td><td><pre>{escape(str(value))}</pre></td></tr>"
                   for label, value in shown if value not in (None, ""))
    return f'<table class="pw-evidence">{rows}</table>'


def test_detail(result: TestResult, link: Callable[[str], str] = escape) -> str:
    """The path SVG, every observation's evidence, and extras (diagnosis, pod events).
    `link` turns a pcap's path into HTML (attachments.pcap_link embeds the file)."""
    parts = []
    if result.hop:
        failing = next((r for r in result.records if not r.ok), None)
        shown = failing or (result.records[0] if result.records else None)
        parts.append(path_svg(result.hop, shown, result.outcome == "failed",
                              flaky=result.flaky))
    flaky = f" ({escape(flaky_words(result))})" if result.flaky else ""
    parts.append(f"<div>outcome <b>{escape(result.outcome)}</b>{flaky}, class "
                 f"<b>{escape(result.cls)}</b></div>")
    if result.blocked is not None:
        parts.append(f'<div class="pw-blocked">{escape(result.blocked.line)}</div>')
    parts += [evidence(record) for record in result.records]
    for key, value in result.extras:
        parts.append(f'<div class="pw-extra"><b>{escape(key)}</b>{_value(value, link)}</div>')
    return f'<div class="pw-detail">{"".join(parts)}</div>'
