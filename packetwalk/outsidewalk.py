"""The north-south walk: a Walk whose one end is outside the cluster.

Egress: a client pod asks the external target which source it saw; that
must be its node's address (masquerade), not the pod's, unless the nodes
route that family out as it is (the lab says so per family). Ingress direction:
the vantage point asks a NodePort, a load balancer or an Ingress.

Placements, read for the outside: the pod or node of interest is the
placement's *server* node (the first node for same-node, the second for
cross-node); a NodePort is entered on that node (same-node) or on the other
one (cross-node).

IP families: egress and the NodePort from outside run once per family on a
dual-stack cluster, as the east-west hops do. Every address the walk hands out is
of the test's family: the family's external target, the pods' and the nodes'
addresses in it, and the vantage point's own address toward them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from packetwalk.diagnose.diagnoser import Diagnoser, Diagnosis
from packetwalk.diagnose.narrowing import Attempt
from packetwalk.families import IPV4, IPV6, NAMES, family_of
from packetwalk.hops import Hop
from packetwalk.inventory import Inventory, NoAddress, Pod
from packetwalk.placement import Node, Placement
from packetwalk.probes import Observation, ProbeError, Prober, Source, Target
from packetwalk.vantage import ExternalTarget, Vantage, route_source, target_for
from packetwalk.walk import Walk

WHAT_TARGET = "an HTTP server whose /clientip answers with the client's ip:port"
# How --external-target spells a target of each family (None: a single-stack cluster,
# whose ids name no family).
TARGET_FORMS = {None: "HOST:PORT", IPV4: "IPV4:PORT", IPV6: "[IPV6]:PORT"}


def no_target(family: str | None, suffixed: bool) -> str:
    """Why a family's egress test skips: it has no target; which option to pass."""
    kind = f"{NAMES[family]} " if family else ""
    form = TARGET_FORMS[family if family == IPV6 or suffixed else None]
    return (f"no {kind}external target: pass --external-target {form} ({WHAT_TARGET}; "
            "one per family), or run against the lab")


def egress_sources(given: tuple[str, ...] | None, family: str | None, nat: bool | None,
                   pod_ip: str, node_ip: str | None) -> tuple[str, ...]:
    """The sources the external target may see for a pod's egress in `family` (pure):
    --expected-source-ips of that family; else what the lab configures for it (`nat`:
    NATed, the node's address; not NATed, the pod's own, as IPv6 clusters often route
    pods out); else (not the lab: `nat` None) the node's InternalIP in it. () when the
    node has no address there."""
    own = tuple(ip for ip in given or () if family is None or family_of(ip) == family)
    if own:
        return own
    if nat is False:
        return (pod_ip,)
    return (node_ip,) if node_ip else ()


@dataclass(frozen=True)
class Egress:
    """What egress asks, and what it must see, for every family: the targets
    (--external-target, else the lab's outside host in each family), the
    --expected-source-ips (either family), and the lab's egress NAT per family
    (empty: not the lab, or a lab that does not say)."""

    targets: tuple[ExternalTarget, ...] = ()
    expected: tuple[str, ...] | None = None
    lab_nat: dict[str, bool] = field(default_factory=dict)


class OutsideWalk(Walk):
    def __init__(self, inventory: Inventory, prober: Prober, hop: Hop, placement: Placement,
                 record, vantage: Vantage, egress: Egress, diagnoser: Diagnoser | None = None,
                 attempts: int = 1, family: str | None = None, family_in_id: bool = False):
        super().__init__(inventory, prober, hop, placement, None, None, record, {}, diagnoser,
                         attempts, family=family, family_in_id=family_in_id)
        self.vantage, self.egress = vantage, egress
        self._vantage_ip = ""  # its address in the family, once vantage_address found it

    # -- egress --------------------------------------------------------------
    @property
    def egress_client(self) -> Pod:
        return self._on("client", self.placement.server)

    @property
    def target(self) -> ExternalTarget | None:
        """The external target of the test's family (vantage.target_for)."""
        return target_for(self.egress.targets, self.family, self.family_in_id)

    def external(self) -> Target | None:
        if self.target is None:
            return None
        return Target(self.target.host, self.target.port, "tcp", "the external target")

    def no_target(self) -> str:
        return no_target(self.family, self.family_in_id)

    def egress_sources(self, client: Pod) -> tuple[str, ...]:
        """What the target may see from `client` in the test's family (egress_sources)."""
        node = next(n for n in self.inventory.nodes if n.name == client.node)
        nat = self.egress.lab_nat.get(self.family or IPV4)
        found = egress_sources(self.egress.expected, self.family, nat,
                               self.address(client), node.ip_of(self.family))
        if not found:
            raise NoAddress(f"node {node.name} has no {NAMES[self.family or IPV4]} InternalIP "
                            f"(it has {', '.join(node.ips)}): no source to expect; pass "
                            "--expected-source-ips")
        return found

    # -- from the vantage point ----------------------------------------------
    @property
    def entry_node(self) -> Node:
        """Where a NodePort is entered: the server's node, or for cross-node the other."""
        if self.placement.id == "cross-node":
            return self.placement.other
        return self.placement.server

    def vantage_address(self, toward: str) -> str | None:
        """The source address the vantage point uses toward `toward` (its route), so in
        `toward`'s family; its probes are labelled by it from then on. A vantage point
        with no route there (a machine without IPv6) skips the test: it offers no such
        path, which says nothing about the cluster."""
        try:
            text = self.prober.read(self.vantage.source(), ["ip", "-o", "route", "get", toward],
                                    f"the route to {toward}")
        except ProbeError as exc:
            if "unreachable" not in str(exc).lower():
                raise
            family = NAMES.get(family_of(toward) or "", "this family")
            raise NoAddress(f"the vantage point {self.vantage.name} has no route to {toward}: "
                            f"it cannot probe {family} (--vantage)") from None
        self._vantage_ip = route_source(text) or ""
        return self._vantage_ip or None

    def label_vantage(self, toward: str) -> None:
        """On a dual-stack run, label the vantage point's probes by its address in the
        test's family (vantage_address; no route in it skips). Single-stack, its one
        address tells nothing: no lookup, so no extra exec and no need for `ip` there."""
        if self.family_in_id:
            self.vantage_address(toward)

    def vantage_source(self, toward: str) -> str:
        """The source the vantage point uses toward `toward`, for a test that checks it:
        a route that names none is a broken probe (ProbeError), never a check left out."""
        found = self.vantage_address(toward)
        if found is None:
            raise ProbeError(f"the vantage point {self.vantage.name}'s route to {toward} names "
                             f"no source address (ip -o route get {toward}): no source to check")
        return found

    def _source(self, src: Pod) -> Source:
        """The vantage point is no pod: labelled by its address in the family, if known."""
        if src == self.vantage:
            return self.vantage.source(ip=self._vantage_ip)
        return super()._source(src)

    def http_at(self, host: str, port: int, via: str) -> Target:
        return Target(host, port, "tcp", via)

    # -- expectations --------------------------------------------------------
    def _as_narrowed(self, attempt: Attempt) -> Attempt | None:
        """Only a pod's probe toward the outside is narrowed down (from its node); the
        vantage point is no pod the narrowing could start from."""
        return replace(attempt, external=True) if attempt.src.name in self.inventory.pods else None

    def failure(self, seen: Observation, diagnosis: Diagnosis | None = None) -> str:
        """The vantage point is no pod: its repro is the local command, not kubectl exec."""
        story = super().failure(seen, diagnosis)
        if seen.src_pod != self.vantage.name:
            return story
        as_pod = f"kubectl -n {self.inventory.namespace} exec {seen.src_pod} -- {seen.command}"
        return story.replace(as_pod, self.vantage.repro(seen.command))
