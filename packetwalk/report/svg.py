"""The packet's path as a small SVG, with the hop under test red when it failed. Pure.

Each hop's catalogue entry (hops.py) has a path template: the stations a
packet passes, e.g. client pod -> its node -> Service -> server's node ->
server pod. The hop's own station (the one its layer is about: the Service
for a ClusterIP test) is where a failure is drawn, with the link into it.
"""

from __future__ import annotations

from html import escape

from packetwalk.hops import DEFAULT_PATH, HOPS
from packetwalk.records import ProbeRecord

TITLES = {"client": "client pod", "client-node": "node", "service": "Service", "dns": "DNS",
          "nodeport": "NodePort", "server-node": "node", "server": "server pod",
          "vantage": "outside", "snat": "node SNAT", "outside": "external target",
          "lb": "LoadBalancer", "ingress": "Ingress", "policy": "NetworkPolicy"}

BOX_W, BOX_H, GAP, PAD = 132, 46, 30, 6
GREEN, RED, GREY = "#2e7d32", "#c62828", "#757575"
AMBER = "#f9a825"  # a flaky hop: failed, but not every attempt


def stations(hop: str, record: ProbeRecord | None) -> tuple[list[tuple[str, str]], int]:
    """[(title, detail)] and the index of the hop's station, from a hop and one
    observation record (src_node, server_node, dst, via); consecutive stations
    on the same node collapse (same-node placements have one node)."""
    record = record or ProbeRecord()
    details = {"client": record.src_pod, "client-node": record.client_node or record.src_node,
               "server-node": record.server_node, "service": record.dst,
               "nodeport": record.dst, "dns": record.dst, "outside": record.dst,
               "vantage": record.src_pod, "lb": record.dst, "ingress": record.dst,
               "snat": record.client_node,
               "server": record.response if hop.startswith("node_port_external") else ""}
    result: list[tuple[str, str]] = []
    focus = 0
    for kind in HOPS[hop].path if hop in HOPS else DEFAULT_PATH:
        name = kind.rstrip("*")
        entry = (TITLES[name], str(details.get(name) or ""))
        is_focus = kind.endswith("*")
        if name.endswith("node") and result and result[-1] == entry and not is_focus:
            continue  # same node twice in a row: one box
        if is_focus:
            focus = len(result)
        result.append(entry)
    return result, focus


def render(boxes: list[tuple[str, str]], focus: int, failed: bool, bad: str = RED) -> str:
    """An inline SVG: boxes left to right, arrows between; the focus box and the
    arrow into it `bad` (red; amber when flaky) when `failed`."""
    width = len(boxes) * BOX_W + (len(boxes) - 1) * GAP + 2 * PAD
    height = BOX_H + 2 * PAD
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="pw-path" width="{width}" '
              f'height="{height}" viewBox="0 0 {width} {height}" role="img">')]
    for index, (title, detail) in enumerate(boxes):
        x = PAD + index * (BOX_W + GAP)
        colour = bad if failed and index == focus else (GREEN if not failed else GREY)
        if index:
            arrow = bad if failed and index == focus else GREY
            parts.append(f'<line x1="{x - GAP}" y1="{PAD + BOX_H / 2}" x2="{x - 4}" '
                         f'y2="{PAD + BOX_H / 2}" stroke="{arrow}" stroke-width="2"/>'
                         f'<polygon points="{x - 4},{PAD + BOX_H / 2 - 4} {x},'
                         f'{PAD + BOX_H / 2} {x - 4},{PAD + BOX_H / 2 + 4}" fill="{arrow}"/>')
        width_attr = 3 if index == focus else 1
        parts.append(f'<rect x="{x}" y="{PAD}" width="{BOX_W}" height="{BOX_H}" rx="6" '
                     f'fill="white" stroke="{colour}" stroke-width="{width_attr}"/>'
                     f'<text x="{x + BOX_W / 2}" y="{PAD + 18}" text-anchor="middle" '
                     f'font-size="12" font-weight="bold" fill="{colour}">{escape(title)}</text>'
                     f'<text x="{x + BOX_W / 2}" y="{PAD + 35}" text-anchor="middle" '
                     f'font-size="10" fill="#333">{escape(fit(detail))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def fit(text: str, limit: int = 22) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def path_svg(hop: str, record: ProbeRecord | None, failed: bool, flaky: bool = False) -> str:
    boxes, focus = stations(hop, record)
    return render(boxes, focus, failed, AMBER if flaky else RED)
