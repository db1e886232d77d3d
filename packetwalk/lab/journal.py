"""The lab's journal of changes: one JSON line per fault injected or healed, agent
restarted or CNI upgraded, with the wall-clock instant it took effect. The truth a
watch's outage windows are measured against (tests/lab/test_watch.py, bench/watch.py).
It lives in the running lab's directory: `down` removes it with the rest."""

import json
import time

from . import paths


def record(event: str, what: str, node: str = "") -> None:
    """`event` ("injected", "healed", "stopped", "started", ...) of `what` (a fault, a
    component, a CNI version), on `node` ("" cluster-wide), now."""
    paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
    with paths.JOURNAL.open("a") as out:
        out.write(json.dumps({"event": event, "what": what, "node": node, "at": time.time()}) + "\n")


def read() -> list[dict]:
    """Every event of the running lab, oldest first."""
    if not paths.JOURNAL.exists():
        return []
    return [json.loads(line) for line in paths.JOURNAL.read_text().splitlines() if line]
