"""What a run deployed, as plain data: its pods, Services and groups. Pure.

The Inventory is what tests read. It travels to xdist workers as JSON, so
workers never list or wait for anything themselves. The names of the run's
pods and Services, and how to dial them, are spelled here and nowhere else;
workloads.py creates what these names say.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from packetwalk.families import NAMES, family_of, of_family
from packetwalk.placement import Node
from packetwalk.probes import Source, Target

# Groups fail independently: a rejected hostNetwork pod must not turn every
# pod-to-pod test into an error, nor a refused NodePort or LoadBalancer Service
# every ClusterIP test.
CORE, HOST, POLICY = "core", "host", "policy"
NODE_PORT, LOAD_BALANCER, INGRESS = "node-port", "load-balancer", "ingress"
# Only with --capture-packets: privileged pods a cluster may refuse; capture is then skipped.
DEBUG = "debug"
# The Services' port names, by protocol (probe pods answer HTTP and UDP).
PORT_NAMES = {"tcp": "http", "udp": "udp"}
# A probe pod's UDP port is its HTTP port + 1, on every pod and node.
PORT_OFFSETS = {"tcp": 0, "udp": 1}


class WorkloadError(Exception):
    """A workload is unusable (never Ready, lost): tests needing it ERROR."""


class NoAddress(LookupError):
    """A pod, Service or node has no address in the family a test walks (a dual-stack
    cluster that gave it one family only): the test skips with this line, as a
    test whose nodes are missing does; it says nothing about the network."""


def _in(addresses: tuple[str, ...], family: str | None, what: str) -> str:
    """The address of `family` among `addresses` (None: the first), else NoAddress."""
    found = of_family(addresses, family)
    if found is None:
        raise NoAddress(f"{what} has no {NAMES.get(family or '', family)} address "
                        f"(it has {', '.join(addresses) or 'none'})")
    return found


def pod_name(role: str, node: Node) -> str:
    """The run's pod of `role` on `node`: server-<slug>, client-<slug>, host-<slug>, debug-<slug>."""
    return f"{role}-{node.slug}"


# NetworkPolicy lanes: each lane is a policy server and its clients (a, b, and
# one in the peer namespace), selected by its own policies only. Cases take a free
# lane, so two cases run at once without seeing each other's policies or labels.
POLICY_LANES = ("1", "2")
LANE_LABEL = "packetwalk.io/lane"
POLICY_ROLES = ("server", "client-a", "client-b", "client-peer")


def policy_pod_name(role: str, lane: str) -> str:
    """policy-server, policy-client-a ... in the first lane; policy-server-2 ... after it."""
    return f"policy-{role}" + ("" if lane == POLICY_LANES[0] else f"-{lane}")


def policy_service_name(lane: str) -> str:
    """The ClusterIP Service in front of exactly the lane's policy server."""
    return policy_pod_name("server", lane)


def server_service_name(node: Node, local: bool = False) -> str:
    """The Service in front of exactly the server on `node` (externalTrafficPolicy Local
    with `local`)."""
    return pod_name("server", node) + ("-local" if local else "")


def node_port_service_name(node: Node) -> str:
    """The NodePort Service in front of exactly the server on `node` (externalTrafficPolicy
    Cluster); apart from its ClusterIP Service, so a cluster refusing NodePorts only
    skips the NodePort tests."""
    return pod_name("server", node) + "-nodeport"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    role: str
    node: str
    ip: str
    http_port: int  # where it answers HTTP; UDP is on the next port
    container: str = ""  # the container probes exec into: the first one
    # status.podIPs: one per family on a dual-stack cluster, `ip` first (the primary).
    ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ips", tuple(self.ips) or (self.ip,))

    def ip_of(self, family: str | None) -> str:
        """Its address in `family` (None: its primary), else NoAddress."""
        return _in(self.ips, family, f"pod {self.name}")

    def source(self, family: str | None = None) -> Source:
        """The pod as a probe's source; `family` sets the address it is labelled by
        (and a source-IP check compares against)."""
        return Source(self.name, self.namespace, self.node, self.ip_of(family), self.container)

    def target(self, protocol: str, family: str | None = None) -> Target:
        """The pod's own answerer over `protocol`, at its address in `family`; a
        hostNetwork pod is its node."""
        kind = "node" if self.role == "host" else "pod"
        return Target(self.ip_of(family), self.http_port + PORT_OFFSETS[protocol], protocol,
                      f"{kind} {self.name} on {self.node}")

    def serves(self, port: int) -> bool:
        """Whether `port` is one of its answering ports (a hostNetwork pod shares its
        node's IP: only its ports tell it apart)."""
        return port - self.http_port in PORT_OFFSETS.values()


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    cluster_ip: str
    ports: dict[str, int]  # by port name: http, udp, alt
    node_ports: dict[str, int]
    backends: tuple[str, ...]  # pod names that must answer
    # spec.clusterIPs: one per family of its ipFamilies (PreferDualStack on a
    # dual-stack cluster), `cluster_ip` first. Empty for a headless Service.
    cluster_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cluster_ips", tuple(self.cluster_ips)
                           or ((self.cluster_ip,) if self.cluster_ip not in ("", "None") else ()))

    def ip_of(self, family: str | None) -> str:
        """Its ClusterIP in `family` (None: the primary), else NoAddress."""
        return _in(self.cluster_ips, family, f"Service {self.name}")

    def target(self, protocol: str, family: str | None = None) -> Target:
        """Its ClusterIP in `family` over `protocol`."""
        return Target(self.ip_of(family), self.ports[PORT_NAMES[protocol]], protocol,
                      f"Service {self.name}")

    def node_port_target(self, node: Node, protocol: str, family: str | None = None) -> Target:
        """Its NodePort for `protocol` on `node`, at the node's address in `family`."""
        return Target(_in(node.ips, family, f"node {node.name}"),
                      self.node_ports[PORT_NAMES[protocol]], protocol,
                      f"NodePort of Service {self.name} on node {node.name}")


@dataclass(frozen=True)
class DnsServer:
    """A pod behind the cluster DNS Service (CoreDNS): not the run's, but a
    backend its name lookups reach through the Service at random."""

    name: str
    namespace: str
    node: str
    ip: str
    ips: tuple[str, ...] = ()  # status.podIPs, `ip` first

    def __post_init__(self) -> None:
        object.__setattr__(self, "ips", tuple(self.ips) or (self.ip,))

    def target(self, protocol: str, family: str | None = None) -> Target:
        return Target(_in(self.ips, family, f"DNS server {self.name}"), 53, protocol,
                      f"DNS server {self.name} on {self.node}")


@dataclass
class Inventory:
    """Everything tests need to know about the deployed workloads."""

    run_id: str
    namespace: str
    peer_namespace: str
    nodes: list[Node]
    dns_ip: str | None
    pods: dict[str, Pod] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # group -> why unusable (ERROR)
    groups: dict[str, str] = field(default_factory=dict)  # pod name -> group
    # group -> why its tests skip: not requested, or refused by the cluster at creation.
    skips: dict[str, str] = field(default_factory=dict)
    host_namespace: str = ""  # hostNetwork and capture pods (privileged), when planned
    # The ready pods behind the DNS Service at session start (cluster.dns_servers).
    dns_servers: list[DnsServer] = field(default_factory=list)
    dns_servers_unknown: str = ""  # why they are not known, if not

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> Inventory:
        data = json.loads(text)
        return Inventory(
            run_id=data["run_id"], namespace=data["namespace"],
            peer_namespace=data["peer_namespace"], nodes=[Node(**n) for n in data["nodes"]],
            dns_ip=data["dns_ip"], pods={k: Pod(**v) for k, v in data["pods"].items()},
            services={k: Service(**{**v, "backends": tuple(v["backends"]),
                                    "cluster_ips": tuple(v.get("cluster_ips", ()))})
                      for k, v in data["services"].items()},
            errors=data["errors"], groups=data["groups"], skips=data["skips"],
            host_namespace=data["host_namespace"],
            dns_servers=[DnsServer(**d) for d in data.get("dns_servers", [])],
            dns_servers_unknown=data.get("dns_servers_unknown", ""))

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of the run's pods (for events, listings)."""
        return [self.namespace, self.peer_namespace] + (
            [self.host_namespace] if self.host_namespace else [])

    @property
    def primary_family(self) -> str | None:
        """The family of the pods' primary addresses (status.podIP, one family for every
        pod of a cluster; a hostNetwork pod has its node's instead). None without pods."""
        return next((family_of(p.ip) for p in self.pods.values() if p.role != "host"), None)

    def unusable(self, group: str) -> str | None:
        """Why a group cannot be used (skipped or broken), or None."""
        return self.skips.get(group) or self.errors.get(group)

    def pod(self, name: str) -> Pod:
        """The pod, or WorkloadError (a pytest ERROR) if its group is unusable."""
        group = self.groups.get(name)
        if group is not None and self.unusable(group):
            raise WorkloadError(self.unusable(group))
        if name not in self.pods:
            raise WorkloadError(f"pod {name} is not part of this run's inventory")
        return self.pods[name]

    def pod_on(self, role: str, node: str) -> Pod:
        """The pod of `role` on the node named `node`, as pod() hands it out."""
        name = self._name_on(role, node)
        if name is None:
            raise WorkloadError(f"node {node} is not one of this run's nodes")
        return self.pod(name)

    def ready_on(self, role: str, node: str) -> Pod | None:
        """The ready pod of `role` on the node named `node`, or None (never raises:
        the diagnosis asks, and it must not turn a failure into an error)."""
        name = self._name_on(role, node)
        return self.pods.get(name) if name else None

    def _name_on(self, role: str, node: str) -> str | None:
        found = next((n for n in self.nodes if n.name == node), None)
        return pod_name(role, found) if found else None

    def dns_servers_from(self, node: str, same_node: bool) -> list[DnsServer]:
        """The DNS servers on `node` (same_node) or on every other node."""
        return [d for d in self.dns_servers if (d.node == node) == same_node]

    def service(self, name: str) -> Service:
        if name not in self.services:
            raise WorkloadError(f"Service {name} is not part of this run's inventory "
                                f"({self.errors.get(CORE) or 'not created'})")
        return self.services[name]

    def server_service(self, node: Node, local: bool = False) -> Service:
        """The Service in front of exactly the server on `node`."""
        return self.service(server_service_name(node, local))

    def node_port_service(self, node: Node) -> Service:
        """The NodePort Service in front of exactly the server on `node`."""
        return self.service(node_port_service_name(node))
