"""Where a test stands, as JUnit XML properties CI systems show. Pure.

pytest's junitxml writes every user_properties entry as a <property>; these
give each test case its hop, placement, protocol/variant and layer.
"""

from __future__ import annotations

from packetwalk.hops import Hop

AXES = ("placement", "variant", "protocol")


def properties(hop: Hop | None, params: dict[str, object]) -> list[tuple[str, str]]:
    """[(name, value)] for a hop test (its hop and its parameters), else []."""
    if hop is None:
        return []
    found = [("hop", hop.name), ("layer", hop.layer.name)]
    found += [(axis, str(params[axis])) for axis in AXES if params.get(axis)]
    return found
