"""Where a test stands, as JUnit XML properties CI systems show. Pure.

pytest's junitxml writes every user_properties entry as a <property>; these
give each test case its hop, placement, protocol/variant, IP family and layer, and once it
ran, its attempts, failed_attempts and, when it failed only as flaky, flaky=true; a
watched cell (--during) its longest outage (seconds), lost and sent probes.
"""

from __future__ import annotations

from packetwalk.hops import Hop
from packetwalk.records import ProbeRecord, WatchRecord, attempt_totals, only_flaky

AXES = ("placement", "variant", "protocol", "family")  # family: the IP family walked


def properties(hop: Hop | None, params: dict[str, object]) -> list[tuple[str, str]]:
    """[(name, value)] for a hop test (its hop and its parameters), else []."""
    if hop is None:
        return []
    found = [("hop", hop.name), ("layer", hop.layer.name)]
    found += [(axis, str(params[axis])) for axis in AXES if params.get(axis)]
    return found


def attempt_properties(records: list[ProbeRecord]) -> list[tuple[str, str]]:
    """[(name, value)] of a test's attempts over its probe cells; [] without a probe."""
    made, failed = attempt_totals(records)
    if not made:
        return []
    found = [("attempts", str(made)), ("failed_attempts", str(failed))]
    return found + ([("flaky", "true")] if only_flaky(records) else [])


def watch_properties(watches: list[WatchRecord]) -> list[tuple[str, str]]:
    """[(name, value)] of a watched cell: longest_outage (seconds), lost, sent; [] else."""
    if not watches:
        return []
    cell = watches[0].cell
    return [("longest_outage", f"{cell.longest_seconds:.3f}"), ("lost", str(cell.lost)),
            ("sent", str(cell.sent))]
