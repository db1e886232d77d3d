"""The north-south walk: a Walk whose one end is outside the cluster.

Egress: a client pod asks the external target which source it saw; that
must be its node's address (masquerade), not the pod's. Ingress direction:
the vantage point asks a NodePort, a load balancer or an Ingress.

Placements, read for the outside: the pod or node of interest is the
placement's *server* node (the first node for same-node, the second for
cross-node); a NodePort is entered on that node (same-node) or on the other
one (cross-node).
"""

from __future__ import annotations

from dataclasses import replace

from packetwalk.diagnose.diagnoser import Diagnoser, Diagnosis
from packetwalk.hops import Hop
from packetwalk.inventory import Inventory, Pod
from packetwalk.placement import Node, Placement
from packetwalk.probes import Observation, Prober, Target
from packetwalk.vantage import ExternalTarget, Vantage, route_source
from packetwalk.walk import Walk

NO_TARGET = ("no external target: pass --external-target host:port (an HTTP server whose "
             "/clientip answers with the client's ip:port), or run against the lab")


class OutsideWalk(Walk):
    def __init__(self, inventory: Inventory, prober: Prober, hop: Hop, placement: Placement,
                 record, vantage: Vantage, target: ExternalTarget | None,
                 expected_sources: tuple[str, ...] | None, diagnoser: Diagnoser | None = None,
                 attempts: int = 1):
        super().__init__(inventory, prober, hop, placement, None, None, record, {}, diagnoser,
                         attempts)
        self.vantage, self.target = vantage, target
        self._expected_sources = expected_sources

    # -- egress --------------------------------------------------------------
    @property
    def egress_client(self) -> Pod:
        return self._on("client", self.placement.server)

    def external(self) -> Target | None:
        if self.target is None:
            return None
        return Target(self.target.host, self.target.port, "tcp", "the external target")

    def egress_sources(self, client: Pod) -> tuple[str, ...]:
        """--expected-source-ips, else the InternalIP of the client's node."""
        if self._expected_sources:
            return self._expected_sources
        return tuple(n.ip for n in self.inventory.nodes if n.name == client.node)

    # -- from the vantage point ----------------------------------------------
    @property
    def entry_node(self) -> Node:
        """Where a NodePort is entered: the server's node, or for cross-node the other."""
        if self.placement.id == "cross-node":
            return self.placement.other
        return self.placement.server

    def vantage_address(self, toward: str) -> str | None:
        """The source address the vantage point uses toward `toward` (its route)."""
        text = self.prober.read(self.vantage.source(), ["ip", "-o", "route", "get", toward],
                                f"the route to {toward}")
        return route_source(text)

    def http_at(self, host: str, port: int, via: str) -> Target:
        return Target(host, port, "tcp", via)

    # -- expectations --------------------------------------------------------
    def expect(self, seen: Observation) -> None:
        """Only a pod's probe toward the outside is narrowed down (from its node); the
        vantage point is no pod the narrowing could start from."""
        if seen.cls in self.hop.accepted:
            return
        if self._last is not None:
            from_pod = self._last.src.name in self.inventory.pods
            self._last = replace(self._last, external=True) if from_pod else None
        super().expect(seen)

    def failure(self, seen: Observation, diagnosis: Diagnosis | None = None) -> str:
        """The vantage point is no pod: its repro is the local command, not kubectl exec."""
        story = super().failure(seen, diagnosis)
        if seen.src_pod != self.vantage.name:
            return story
        as_pod = f"kubectl -n {self.inventory.namespace} exec {seen.src_pod} -- {seen.command}"
        return story.replace(as_pod, self.vantage.repro(seen.command))
