"""Files a test leaves behind (pcaps), embedded in the self-contained report.

The HTML report is one file a colleague opens from CI artifacts, where a path
on the runner means nothing: each pcap goes in as a data: link that downloads
under its own name and opens in Wireshark.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

MAX_EMBEDDED = 2 * 1024 * 1024  # bytes per file; above it the report links the path only
PCAP_TYPE = "application/vnd.tcpdump.pcap"


def pcap_link(path: str) -> str:
    """A download link carrying the file, or the bare path when it is missing or too big."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError:
        return f"<span>{escape(path)} (missing)</span>"
    if size > MAX_EMBEDDED:
        return f"<span>{escape(path)} ({size} bytes, not embedded)</span>"
    data = base64.b64encode(file.read_bytes()).decode()
    return (f'<a class="pw-pcap" download="{escape(file.name)}" '
            f'href="data:{PCAP_TYPE};base64,{data}">{escape(file.name)}</a> ({size} bytes)')
