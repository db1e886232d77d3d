"""From observations to one sentence naming the broken layer. Pure.

Input: the records tests leave behind (records.ProbeRecord), one per probe; read
here: hop, placement, protocol, cls, ok, client_node, src_node, server_node, via.
The rule is the debugging walk itself: the lowest layer with a failure is the
suspect; layers below it that passed are named as fine; failures above it may
be consequences and are listed as such. Tests blocked by a lower layer
(diagnose/blocking.py) bring no records: they are listed under the layer that
blocks them, which is named once. Its scope is where the failures are
confined: one IP family ("for IPv6 only", when the layer was walked in both),
one protocol, one placement, or the nodes they went through when probes
through other nodes passed ("only through pw-worker2").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from packetwalk.families import NAMES as FAMILY_NAMES
from packetwalk.hops import HOPS, Layer
from packetwalk.probes import BLOCKED_CLASSES
from packetwalk.records import ProbeRecord

# Every layer by the name reports carry (BlockedRecord.layer, JUnit's layer property).
LAYERS = {hop.layer.name: hop.layer for hop in HOPS.values()}


@dataclass(frozen=True)
class BlockedTest:
    """A test reported as blocked: its id, its own layer, and the layer blocking it."""

    id: str
    layer: str
    by: str


def _layer(record: ProbeRecord) -> Layer:
    hop = HOPS[record.hop]
    if hop.reach_layer and record.cls in BLOCKED_CLASSES:
        return hop.reach_layer  # no answer at all: the path failed before the check could
    return hop.layer


# How the walk records a NodePort target's `via` (inventory.Service.node_port_target).
_NODE_PORT_VIA = re.compile(r"^NodePort of .+ on node (?P<node>\S+)$")


def dialed_node(record: ProbeRecord) -> str:
    """The node whose NodePort the probe dialed, from the target it recorded; '' for
    any other probe."""
    found = _NODE_PORT_VIA.match(record.via)
    return found["node"] if found else ""


def _through(record: ProbeRecord) -> frozenset[str]:
    """The nodes a probe went through, as far as its record tells: the node a NodePort
    was dialed on; the client's and the server's node of a placement; none for a probe
    without a placement (DNS, hairpin, policy cases: their nodes are no axis)."""
    node = dialed_node(record)
    if node:
        return frozenset({node})
    if record.placement:
        return frozenset(n for n in (record.src_node or record.client_node, record.server_node) if n)
    return frozenset()


def _blamed(failed: list[ProbeRecord], tested: list[ProbeRecord]) -> list[str]:
    """The nodes the failures have in common, sorted: every failure went through one of
    them, and no passing probe went through any; [] when no probe through another node
    passed (nothing to tell the nodes apart), or a failure's nodes all also passed."""
    passing: set[str] = set().union(*(_through(r) for r in tested if r.ok))
    alone = [_through(r) - passing for r in failed]
    if not passing or not all(alone):
        return []
    return sorted(set().union(*alone))


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _scope(failed: list[ProbeRecord], tested: list[ProbeRecord]) -> str:
    """Where the failures are confined, within what the layer tested: ' for IPv6 only',
    ' for udp only', ' only through b' (NodePorts), ' across nodes only (a -> b)',
    ' within node a only', ' only to/from c', or ''. Each narrower scope is read
    among the probes of the broader ones it follows (like with like)."""
    parts = []
    failed_families = {r.family for r in failed if r.family}
    tested_families = {r.family for r in tested if r.family}
    if failed_families and failed_families < tested_families:
        parts.append(f" for {'/'.join(FAMILY_NAMES[f] for f in sorted(failed_families))} only")
        # An IPv4 probe passing through a node clears it of nothing IPv6.
        tested = [r for r in tested if not r.family or r.family in failed_families]
    failed_protocols = {r.protocol for r in failed if r.protocol}
    tested_protocols = {r.protocol for r in tested if r.protocol}
    if failed_protocols and failed_protocols < tested_protocols:
        parts.append(f" for {'/'.join(sorted(failed_protocols))} only")
        # Like with like: a TCP probe passing through a node clears it of nothing UDP.
        tested = [r for r in tested if not r.protocol or r.protocol in failed_protocols]
    blamed = _blamed(failed, tested)
    node_ports = all(dialed_node(r) for r in failed)
    if node_ports and blamed:
        # A NodePort is about the node dialed, whatever the placement of its ends.
        parts.append(f" only through {_and(blamed)}")
        return ",".join(parts)
    failed_placements = {r.placement for r in failed if r.placement}
    tested_placements = {r.placement for r in tested if r.placement}
    if len(tested_placements) > 1 and failed_placements == tested_placements:
        if blamed:
            parts.append(f" only to/from {_and(blamed)}")
        elif node_ports and any(r.ok for r in tested):
            parts.append(f" through {_and(sorted({dialed_node(r) for r in failed}))}")
        else:
            parts.append(" on every placement")
    elif failed_placements == {"cross-node"} and "same-node" in tested_placements:
        pairs = sorted({f"{r.client_node} -> {r.server_node}" for r in failed})
        parts.append(f" across nodes only ({', '.join(pairs)})")
    elif failed_placements == {"same-node"} and "cross-node" in tested_placements:
        nodes = sorted({r.server_node for r in failed if r.server_node})
        parts.append(f" within node {', '.join(nodes)} only")
    return ",".join(parts)


def for_failure(record: ProbeRecord) -> str:
    """One failing probe on its own: which layer, where, and where to look."""
    layer = _layer(record)
    where = ""
    if node := dialed_node(record):
        where = f" through {node}"  # the NodePort's node, not the client's
    elif record.placement == "cross-node":
        where = f" from {record.client_node} to {record.server_node}"
    elif record.server_node:
        where = f" on {record.server_node}"
    axes = [a for a in (record.protocol, FAMILY_NAMES.get(record.family or "")) if a]
    protocol = f" ({', '.join(axes)})" if axes else ""
    return f"{layer.name} fails{protocol}{where}: {record.cls}; look at {layer.suspects}"


def summarize(records: list[ProbeRecord], errors: int = 0,
              blocked: list[BlockedTest] | tuple[BlockedTest, ...] = ()) -> str:
    """The run's verdict in one sentence; `errors`: tests whose probe could not run;
    `blocked`: tests blocked by a lower layer (their records are not in `records`)."""
    sentence = _network(records, list(blocked))
    if errors:
        # Never a network verdict: the probe broke (exec, pod never Ready).
        sentence += (f" {errors} test{'s' if errors > 1 else ''} could not probe (ERROR): "
                     "setup, not the network; see their pod events.")
    return sentence


def _rank(name: str) -> int:
    layer = LAYERS.get(name)
    return layer.rank if layer is not None else len(LAYERS)


def _blocked_lines(blocked: list[BlockedTest], suspect: str) -> str:
    """'. Blocked by it (not failed; what they stand on fails): path MTU (2 tests), ...',
    one clause per blocking layer, lowest first."""
    out = ""
    for by in sorted({b.by for b in blocked}, key=_rank):
        counted = Counter(b.layer for b in blocked if b.by == by)
        listed = ", ".join(f"{layer} ({n} test{'s' if n > 1 else ''})"
                           for layer, n in sorted(counted.items(), key=lambda x: _rank(x[0])))
        head = "it" if by == suspect else by
        out += f". Blocked by {head} (not failed; what they stand on fails): {listed}"
    return out


def _network(records: list[ProbeRecord], blocked: list[BlockedTest]) -> str:
    if not records and not blocked:
        return "no probe ran"
    failed = [r for r in records if not r.ok]
    layers = {_layer(r) for r in records}
    if not failed and blocked:
        # The failing layer's own tests did not run (deselected): its name comes from
        # the narrowing of the tests it blocked.
        lowest = min((b.by for b in blocked), key=_rank)
        return (f"{lowest} is broken (seen by the narrowing of the tests it blocks; its own "
                f"tests did not fail here){_blocked_lines(blocked, lowest)}.")
    if not failed:
        names = ", ".join(layer.name for layer in sorted(layers, key=lambda x: x.rank))
        return f"all {len(records)} probes as expected: {names}"
    suspect = min((_layer(r) for r in failed), key=lambda x: x.rank)
    in_layer = [r for r in records if _layer(r) == suspect]
    failed_in_layer = [r for r in failed if _layer(r) == suspect]
    classes = sorted({r.cls for r in failed_in_layer})
    # Every failure of the layer flaky (some of its attempts passed, --attempts): it
    # works at times, which sends the reader to other causes (load, one bad replica,
    # loss) than a layer that is down; the attempts counted say how often.
    state, counted = "broken", ""
    if all(r.flaky for r in failed_in_layer):
        cells = [r.cell() for r in failed_in_layer]
        state = "flaky"
        counted = (f"; {sum(c.failed for c in cells)} of {sum(c.attempts for c in cells)} "
                   f"attempts failed")
    sentence = (f"{suspect.name} is {state}{_scope(failed_in_layer, in_layer)} "
                f"({', '.join(classes)}{counted}): look at {suspect.suspects}")
    fine = sorted((layer for layer in layers
                   if layer.rank < suspect.rank
                   and all(r.ok for r in records if _layer(r) == layer)),
                  key=lambda x: x.rank)
    if fine:
        sentence += f". Fine: {', '.join(layer.name for layer in fine)}"
    above = sorted({_layer(r) for r in failed if _layer(r).rank > suspect.rank},
                   key=lambda x: x.rank)
    if above:
        sentence += (f". Also failing, possibly as a consequence: "
                     f"{', '.join(layer.name for layer in above)}")
    sentence += _blocked_lines(blocked, suspect.name)
    # Layers above that pass narrow it down (DNS passing while ClusterIP fails:
    # only some Service rules are broken).
    passing = sorted((layer for layer in layers if layer.rank > suspect.rank
                      and all(r.ok for r in records if _layer(r) == layer)),
                     key=lambda x: x.rank)
    if passing:
        sentence += f". Passing above it: {', '.join(layer.name for layer in passing)}"
    return sentence + "."
