"""Failed or blocked: does a failure sit in the test's own layer, or below it? Pure.

A test is FAILED only when what it stands on was not seen to fail. When the
narrowing (narrowing.py, the debugging walk from the same client) shows a lower
hop failing on the test's way, and the catalogue says the test stands on that
hop (hops.Hop.stands_on, followed down by hops.preconditions), the test is
BLOCKED by it: an error naming that layer and the id that tests it, so only the
broken layer's own ids count as its failures.

What counts as seen below, lowest first:
- the pod network: a pod IP the failed probe's traffic goes to (a Service's or a
  name's backend, the run's server beside a DNS server pod, a hairpin pod asked
  from beside it) fails from the same client; a small request to the near-MTU
  target fails; or a probe of a hop whose failure to get any answer is its reach
  layer's (hops.Hop.reach_layer) got none from a pod IP;
- Service translation: the ClusterIP behind a name or a NodePort fails while its
  pods answer; a hairpin pod's ClusterIP fails from beside it too; every DNS
  server pod answers directly while the lookup through the DNS Service does not;
  a probe through a ClusterIP of a hop with a reach layer got no answer at all.
A NetworkPolicy cell that fails with no policy applied (its baseline) is blocked
whatever the narrowing says: by what the narrowing saw, else by the cell's own
kind of target (pod IP, ClusterIP, name).
"""

from __future__ import annotations

from dataclasses import dataclass

from packetwalk.diagnose.narrowing import (
    CLUSTER_IP,
    DNS_NODE,
    DNS_NODE_TRANSPORT,
    NAME,
    NODE_PORT,
    PEER,
    POD_IP,
    SMALL,
)
from packetwalk.families import NAMES as FAMILY_NAMES
from packetwalk.hops import HOPS, Hop, Layer, preconditions
from packetwalk.probes import BLOCKED_CLASSES

SAME_NODE, CROSS_NODE = "same-node", "cross-node"
# The hop that tests each kind of policy cell target on its own (the blocking id's hop).
HOP_OF_KIND = {POD_IP: "pod_ip", CLUSTER_IP: "cluster_ip", NAME: "dns_service_name"}
# Steps that dial a pod IP the failed probe's traffic goes to (not another placement
# or protocol of the same hop: those scope the failure, they do not lie below it).
_ON_THE_WAY = ("", DNS_NODE, DNS_NODE_TRANSPORT, PEER)


@dataclass(frozen=True)
class Seen:
    """One narrowing step's result, as the decision reads it."""

    kind: str  # what it dialed (narrowing.POD_IP, CLUSTER_IP, ...)
    change: str  # how it differs from the failed probe ("" none, SMALL, PEER, ...)
    ok: bool
    placement: str  # SAME_NODE or CROSS_NODE (its source's node vs its target's), "" unknown
    protocol: str
    label: str  # the step as the bisection prints it, with its class


@dataclass(frozen=True)
class Findings:
    """A failed probe and what the narrowing saw around it."""

    dialed: str  # what the failed probe dialed (narrowing kind)
    cls: str  # the failed probe's class
    protocol: str
    placement: str  # of the failed probe, as Seen.placement
    steps: tuple[Seen, ...] = ()
    # A lookup through the DNS Service that every DNS server pod answered when asked
    # directly over the same transport (None: not a lookup, or no server was asked).
    dns_servers_answer: bool | None = None


@dataclass(frozen=True)
class Blocked:
    """The lower hop seen failing, where, and what showed it."""

    hop: Hop
    placement: str  # "" when the evidence does not tell
    protocol: str
    shown: str
    # The blocked test's id part for its family (dual-stack runs only): the narrowing
    # stayed in that family, so the blocking hop's test named is that family's twin.
    family: str | None = None

    @property
    def layer(self) -> Layer:
        return self.hop.layer

    @property
    def test_id(self) -> str:
        """The id of the blocking hop's own test for this placement and protocol."""
        hop = self.hop
        placement = self.placement if self.placement in hop.placements else (
            hop.placements[0] if hop.placements else None)
        protocol = self.protocol if self.protocol in hop.protocols else (
            hop.protocols[0] if hop.protocols else None)
        return hop.test_id(placement, hop.variants[0] if hop.variants else None, protocol,
                           self.family if hop.by_family else None)

    def line(self) -> str:
        """The error's one line: 'blocked: the <layer> across nodes fails (<id>): <shown>'."""
        where = {CROSS_NODE: " across nodes", SAME_NODE: " within a node"}.get(self.placement, "")
        where += f" for {FAMILY_NAMES[self.family]}" if self.family else ""
        return f"blocked: the {self.layer.name}{where} fails ({self.test_id}): {self.shown}"


FAILED = None  # decide's answer when the test's own layer is at fault


def below(findings: Findings, reach: bool = False) -> Blocked | None:
    """The lowest failure the narrowing saw beneath the failed probe, or None.
    `reach`: the failing hop counts a probe with no answer at all as its reach
    layer's failure (hops.Hop.reach_layer), so the probe itself is evidence."""
    return _pod_network(findings, reach) or _service(findings, reach)


def _pod_network(findings: Findings, reach: bool) -> Blocked | None:
    hop = HOPS["pod_ip"]
    for step in findings.steps:
        if step.ok or step.kind != POD_IP:
            continue
        if findings.dialed == POD_IP and step.change == SMALL:
            return Blocked(hop, findings.placement, findings.protocol,
                           f"a small request fails too ({step.label})")
        if findings.dialed != POD_IP and step.change in _ON_THE_WAY:
            return Blocked(hop, step.placement, step.protocol, step.label)
    if reach and findings.dialed == POD_IP and findings.cls in BLOCKED_CLASSES:
        return Blocked(hop, findings.placement, findings.protocol,
                       f"the pod IP itself gives no answer ({findings.cls})")
    return None


def _service(findings: Findings, reach: bool) -> Blocked | None:
    hop = HOPS["cluster_ip"]
    for step in findings.steps:
        if step.ok or step.kind != CLUSTER_IP:
            continue
        if findings.dialed in (NAME, NODE_PORT) and step.change == "":
            return Blocked(hop, step.placement, step.protocol, step.label)
        if findings.dialed == CLUSTER_IP and step.change == PEER:
            return Blocked(hop, SAME_NODE, step.protocol, f"from beside it: {step.label}")
    if findings.dialed == NAME and findings.dns_servers_answer:
        # Where the DNS Service's translation fails is not told (its pods are spread):
        # the id named is the ClusterIP test's first placement.
        return Blocked(hop, "", findings.protocol,
                       "every DNS server pod answers directly, the lookup through the DNS "
                       f"Service does not ({findings.cls})")
    if reach and findings.dialed == CLUSTER_IP and findings.cls in BLOCKED_CLASSES:
        return Blocked(hop, findings.placement, findings.protocol,
                       f"the ClusterIP itself gives no answer ({findings.cls})")
    return None


def decide(hop: Hop, findings: Findings | None) -> Blocked | None:
    """Blocked by what the narrowing saw below, when `hop` stands on it; else FAILED
    (None). Without findings (no narrowing) nothing was seen below: FAILED."""
    if findings is None:
        return FAILED
    seen = below(findings, reach=hop.reach_layer is not None)
    if seen is not None and seen.hop.name in preconditions(hop.name):
        return seen
    return FAILED


def decide_baseline(hop: Hop, findings: Findings | None, kind: str, placement: str,
                    protocol: str, cell: str) -> Blocked:
    """A cell that fails with no policy applied: never the policy layer's failure.
    Blocked by what the narrowing saw below, else by the cell's own kind of target
    (`kind`, a narrowing kind); `cell` names it for the line."""
    seen = below(findings) if findings is not None else None
    if seen is not None and seen.hop.name in preconditions(hop.name):
        return seen
    cls = f" ({findings.cls})" if findings is not None else ""
    return Blocked(HOPS[HOP_OF_KIND[kind]], placement, protocol,
                   f"the cell {cell} fails with no policy applied{cls}")
