"""Which probes narrow a failure down, from the failed probe and the run's inventory. Pure.

The debugging walk, one step below the failure, from the same client:
- a name fails: the ClusterIP behind it, then a pod IP behind that;
- a ClusterIP (or NodePort) fails: the ClusterIP, then each backend's pod IP;
- cross-node fails: the same target from a client on the target's node, and
  the same kind of target on the client's own node;
- from a pod fails: the same target from the node's network namespace (the
  run's hostNetwork pod on that node);
- one protocol fails: the same target over the other one (UDP vs TCP);
- a near-MTU payload fails: a small request to the same target;
- a host outside the cluster fails: the same host from the node;
- a pod fails to reach itself through its Service (hairpin): the same ClusterIP
  and the pod's own IP from another pod on its node;
- a lookup over UDP fails: the run's server on each DNS server pod's node, over UDP.

Every step stays in the failed probe's IP family (Attempt.family): an end without
an address in it is left out, never dialed in the other family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from packetwalk.inventory import PORT_NAMES, DnsServer, Inventory, NoAddress, Pod, Service
from packetwalk.placement import Node
from packetwalk.probes import Observation, Target

# What a step (or the failed probe) dialed; conclusion.py reasons on these.
NAME, CLUSTER_IP, NODE_PORT, POD_IP = "name", "ClusterIP", "NodePort", "pod IP"
DNS_SERVER = "DNS server"  # a name asked of one DNS server pod directly (dnsservers.py)
EXTERNAL = "outside host"  # neither a pod, a Service nor a node of the run
# How a step differs from the failed probe.
SAME_NODE_CLIENT, SAME_NODE_TARGET, FROM_NODE = "same-node client", "same-node target", "from node"
DNS_NODE = "the DNS server's node"  # the run's server on a node that hosts a DNS server
# The same, over the lookup's own transport (UDP): what DNS_NODE asks over HTTP may
# answer while UDP to that node's pods is lost.
DNS_NODE_TRANSPORT = "the DNS server's node, same transport"
PEER = "another pod on the node"  # a hairpin target asked from beside it
OTHER_PROTOCOL, SMALL = "other protocol", "small request"
OTHER = {"tcp": "udp", "udp": "tcp"}


@dataclass
class Attempt:
    """The failed probe as the walk ran it: who, to what, and how to run it again."""

    src: Pod
    to: Target
    name: str | None = None  # the DNS name, when the probe went by name
    large: bool = False  # the probe carried a near-MTU payload
    external: bool = False  # the target is outside the cluster (egress)
    # The IP family the test walked: every narrowing step stays in it, so an IPv6
    # failure is never "narrowed" by IPv4 probes that pass (None: primary addresses).
    family: str | None = None
    retry: Callable[[], Observation] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Step:
    kind: str  # NAME, CLUSTER_IP, NODE_PORT or POD_IP: what it dials
    change: str  # "" or SAME_NODE_CLIENT, SAME_NODE_TARGET, FROM_NODE, OTHER_PROTOCOL, SMALL
    src: Pod
    to: Target
    name: str | None = None  # what a DNS_SERVER step looks up

    @property
    def label(self) -> str:
        what = f"{self.kind} {self.to.label()}"
        return f"{what} from {self.src.name}" + (f" ({self.change})" if self.change else "")


@dataclass(frozen=True)
class Dialed:
    """What the failed probe's destination is, found in the inventory."""

    kind: str
    service: Service | None = None
    pod: Pod | None = None
    node: Node | None = None  # the node whose NodePort it is


def dialed(attempt: Attempt, inventory: Inventory) -> Dialed:
    to = attempt.to
    if attempt.name is not None:
        service = inventory.services.get(attempt.name.split(".")[0])
        return Dialed(NAME, service=service)
    node = next((n for n in inventory.nodes if to.ip in n.ips), None)
    for service in inventory.services.values():
        if to.ip in service.cluster_ips:
            return Dialed(CLUSTER_IP, service=service)
        if to.port in service.node_ports.values() and node is not None:
            return Dialed(NODE_PORT, service=service, node=node)
    for pod in inventory.pods.values():
        if to.ip in pod.ips and pod.serves(to.port):
            return Dialed(POD_IP, pod=pod)
    if attempt.external:
        return Dialed(EXTERNAL)
    return Dialed(POD_IP)


def _backends(inventory: Inventory, service: Service) -> list[Pod]:
    return [inventory.pods[name] for name in service.backends if name in inventory.pods]


def _at(end: Pod | Service | DnsServer, protocol: str, family: str | None) -> Target | None:
    """`end` over `protocol` at its address in `family`; None when it has none there."""
    try:
        return end.target(protocol, family)
    except NoAddress:
        return None


def _steps(kind: str, change: str, src: Pod, targets: list[Target | None],
           name: str | None = None) -> list[Step]:
    """A step per target that exists in the family."""
    return [Step(kind, change, src, to, name) for to in targets if to is not None]


def _other_protocol(target: Dialed, to: Target, inventory: Inventory,
                    family: str | None = None) -> Target | None:
    """The failed probe's target over the other protocol (probe pods answer both)."""
    other = OTHER.get(to.protocol)
    if other is None:
        return None
    if target.kind == POD_IP and target.pod is not None:
        return _at(target.pod, other, family)
    service = target.service
    if service is None or len(service.backends) != 1:
        # Through a Service of several backends one request may reach another
        # backend than the failed one: its answer would say nothing about the protocol.
        return None
    if target.kind == CLUSTER_IP and PORT_NAMES[other] in service.ports:
        return _at(service, other, family)
    if target.kind == NODE_PORT and target.node and PORT_NAMES[other] in service.node_ports:
        try:
            return service.node_port_target(target.node, other, family)
        except NoAddress:
            return None
    return None


def plan(attempt: Attempt, inventory: Inventory) -> list[Step]:
    """The narrowing steps for a failed probe, in the order an engineer would run them."""
    src, to, family = attempt.src, attempt.to, attempt.family
    # A name resolved over DNS (53/udp, 53/tcp) is narrowed with HTTP to what it names.
    protocol = to.protocol if to.port != 53 else "tcp"
    target = dialed(attempt, inventory)
    steps: list[Step] = []
    service = target.service
    if target.kind in (NAME, NODE_PORT) and service is not None and service.cluster_ips:
        steps += _steps(CLUSTER_IP, "", src, [_at(service, protocol, family)])
    if target.kind in (NAME, CLUSTER_IP, NODE_PORT) and service is not None:
        backends = _backends(inventory, service)
        if target.kind == NAME:
            backends = backends[:1]  # one pod IP tells "DNS or below" apart
        steps += _steps(POD_IP, "", src, [_at(pod, protocol, family) for pod in backends])
    if target.kind == POD_IP and target.pod is not None and target.pod.node != src.node:
        # The policy pods have no twin on the other node: the plain client/server stand in.
        near = (inventory.ready_on(src.role, target.pod.node)
                or inventory.ready_on("client", target.pod.node))
        if near is not None:
            steps.append(Step(POD_IP, SAME_NODE_CLIENT, near, to))
        local = (inventory.ready_on(target.pod.role, src.node)
                 or inventory.ready_on("server", src.node))
        if local is not None:
            steps += _steps(POD_IP, SAME_NODE_TARGET, src, [_at(local, protocol, family)])
    if target.kind == CLUSTER_IP and service is not None and src.name in service.backends:
        steps += hairpin_steps(attempt, inventory, service)
    if target.kind == NAME and to.port == 53:
        steps += dns_server_steps(attempt, inventory)
    if attempt.large:
        # Only the payload's size differs: the one question is the path's MTU.
        return [Step(target.kind, SMALL, src, to)]
    other = _other_protocol(target, to, inventory, family)
    if other is not None and attempt.name is None:
        steps.append(Step(target.kind, OTHER_PROTOCOL, src, other))
    host = inventory.ready_on("host", src.node)
    if src.role != "host" and host is not None and target.kind != NAME:
        steps.append(Step(target.kind, FROM_NODE, host, to))
    return steps


def dns_server_steps(attempt: Attempt, inventory: Inventory) -> list[Step]:
    """A failed lookup, asked of each DNS server pod directly (over its transport
    and the other), and the run's server on each node hosting one: a lookup
    through the Service reached one of them at random, so each is asked."""
    src, to, family = attempt.src, attempt.to, attempt.family
    steps = [step for server in inventory.dns_servers
             for change, protocol in (("", to.protocol), (OTHER_PROTOCOL, OTHER[to.protocol]))
             for step in _steps(DNS_SERVER, change, src, [_at(server, protocol, family)],
                                attempt.name)]
    nodes = {d.node for d in inventory.dns_servers}
    for node in sorted(nodes - {src.node}):
        near = inventory.ready_on("server", node)
        if near is not None:
            steps += _steps(POD_IP, DNS_NODE, src, [_at(near, "tcp", family)])
    if to.protocol == "udp":
        # The client's own node first: a UDP loss there is the nearest one.
        for node in sorted(nodes, key=lambda n: (n != src.node, n)):
            near = inventory.ready_on("server", node)
            if near is not None:
                steps += _steps(POD_IP, DNS_NODE_TRANSPORT, src, [_at(near, "udp", family)])
    return steps


def hairpin_steps(attempt: Attempt, inventory: Inventory, service: Service) -> list[Step]:
    """The hairpin pod's own ClusterIP and pod IP, asked by another pod on its node:
    when those fail too the Service or the pod network is broken there, not hairpin."""
    src, to = attempt.src, attempt.to
    peer = inventory.ready_on("client", src.node)
    if peer is None:
        return []
    return [*_steps(POD_IP, PEER, peer, [_at(src, to.protocol, attempt.family)]),
            Step(CLUSTER_IP, PEER, peer, to)]
