"""The hop catalogue: what each test exercises, and what to expect. Pure.

This is data, read by the plugin (to parametrize tests and name them), by the
walk fixture (to word failures and point at the next hop), by the verdict and
by the report (the packet's path). Everything about a hop is its one entry;
a test declares its hop with @pytest.mark.hop("name") (see hop_of).
Tests never branch on expected results: they look them up here.
Adding a hop: one entry here, one marked test in suites/.
"""

from __future__ import annotations

from dataclasses import dataclass

from packetwalk.families import Walked, id_suffix
from packetwalk.inventory import CORE, HOST, POLICY
from packetwalk.inventory import INGRESS as INGRESS_GROUP
from packetwalk.inventory import LOAD_BALANCER as LB_GROUP
from packetwalk.inventory import NODE_PORT as NODE_PORT_GROUP
from packetwalk.placement import Placement
from packetwalk.probes import BLOCKED_CLASSES, OK

PLACEMENTS = ("same-node", "cross-node")
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class Layer:
    """One layer of the debugging walk, bottom (0) to top."""

    rank: int
    name: str  # what the verdict calls it when it breaks
    suspects: str  # where an engineer looks first


POD_NETWORK = Layer(0, "pod network (PodIP)", "CNI bridge/veth, routes between nodes")
HOST_NETWORK = Layer(1, "pod <-> node path", "node routes to the pod CIDR, host firewall")
PATH_MTU = Layer(2, "path MTU", "MTU of pod interfaces vs node links, ICMP frag-needed")
SOURCE_IP = Layer(3, "source IP preservation", "masquerade rules, kube-proxy --cluster-cidr")
SERVICE = Layer(4, "Service translation (ClusterIP)",
                "kube-proxy's rules (or the CNI's, where it replaces kube-proxy), EndpointSlices")
HAIRPIN = Layer(5, "hairpin", "bridge hairpin mode, kube-proxy hairpin masquerade")
NODE_PORT = Layer(6, "NodePort", "kube-proxy NodePort rules, route_localnet, conntrack")
DNS = Layer(7, "cluster DNS", "CoreDNS pods, kube-dns Service, kubelet clusterDNS")
# Where to look is the cluster's own enforcer: the run's "CNI: ..." line names the one
# it found (kube-router on the lab, but Calico, Cilium... elsewhere), so the suspects
# stay generic rather than name one product on every cluster.
POLICY_LAYER = Layer(8, "NetworkPolicy enforcement",
                     "the NetworkPolicy enforcer (the CNI's policy agent, named in the CNI line)")
# North-south: traffic leaving or entering the cluster, above everything east-west.
EGRESS_NAT = Layer(9, "egress NAT", "the nodes' masquerade of the pod CIDR, their default route")
EXTERNAL_NODE_PORT = Layer(10, "NodePort from outside", "kube-proxy NodePort rules, "
                           "externalTrafficPolicy, the nodes' firewall")
LOAD_BALANCER = Layer(11, "LoadBalancer", "the load-balancer controller and its health checks")
INGRESS = Layer(12, "Ingress", "the ingress controller, its Service and its IngressClass")

# Not a class: a hop expecting it accepts any of BLOCKED_CLASSES (see Hop.accepted).
BLOCKED = "blocked"
DEFAULT_PATH = ("client*", "server")  # the picture of a hop that draws no path of its own


@dataclass(frozen=True)
class Next:
    """The walk, one step down: when a hop fails, `hop` tells the next layer apart
    ("name fails: try the ClusterIP; ClusterIP fails: try the PodIP; cross-node
    fails: try same-node; from a pod fails: try from the node").
    `placement` None keeps the failing one; `when` limits the step to one failing
    placement (a step without `when` is for every other)."""

    hop: str
    placement: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Hop:
    """One test function's hop: everything about it, in one catalogue entry.

    `roles` are the placement roles the hop needs a node for; a placement
    lacking one is skipped ("needs 2 schedulable nodes"). The axes
    (placements, variants, protocols) become the test id, in that order:
    test_cluster_ip[cross-node-udp], test_dns_service_name[fqdn-tcp].
    `path` is the packet's path in the report's picture: station kinds (client,
    client-node, service, dns, nodeport, server-node, server, vantage, snat,
    outside, lb, ingress, policy), a trailing "*" marking the hop's own station.
    """

    name: str
    test: str
    title: str  # how "next: try ..." names it
    layer: Layer
    roles: tuple[str, ...] = ("client", "server")
    placements: tuple[str, ...] = PLACEMENTS
    variants: tuple[str, ...] = ()
    protocols: tuple[str, ...] = PROTOCOLS
    expect: str = OK
    groups: tuple[str, ...] = (CORE,)  # workload groups that must be up, else ERROR
    # The layer to blame when the probe got no answer at all (e.g. a source-IP
    # check through a ClusterIP that times out is a Service failure, not SNAT).
    reach_layer: Layer | None = None
    path: tuple[str, ...] = DEFAULT_PATH
    next: tuple[Next, ...] = ()  # none: the bottom of the walk
    # The lower hops this one's traffic passes through, so must work for its own
    # check to mean anything (MTU on the pod network, a NodePort on its Service,
    # DNS through the kube-dns Service on Service translation). When the narrowing
    # sees one of them (or one below them) fail, this hop is blocked, not failed
    # (diagnose/blocking.py). preconditions() follows them down.
    stands_on: tuple[str, ...] = ()
    # Whether the hop dials addresses of one IP family, so runs once per family on a
    # dual-stack cluster (families.py, the id rule). False: a fact (resolv.conf), or a
    # hop whose far end is one address the cluster's controller picks (a load
    # balancer, an Ingress: status.loadBalancer lists what it chose, maybe one family).
    # NetworkPolicy has one: an enforcer may police one family only (kube-router
    # v2.1.0 on a dual-stack lab). Egress has one: a target per family
    # (--external-target), as the NodePort from outside (the node's address in it).
    by_family: bool = True

    @property
    def accepted(self) -> frozenset[str]:
        """The result classes that pass: any blocked class for BLOCKED, else `expect`."""
        return EXPECTED_CLASSES[BLOCKED] if self.expect == BLOCKED else frozenset({self.expect})

    def step_down(self, placement: str | None) -> Next | None:
        """The next step when this hop fails at `placement`."""
        for when in (placement, None):
            found = [step for step in self.next if step.when == when]
            if found:
                return found[0]
        return None

    def test_id(self, placement: str | None, variant: str | None, protocol: str | None,
                family: str | None = None) -> str:
        """`family`: the id's family part, only on a dual-stack cluster (id_suffix)."""
        parts = [p for p in (placement, variant, protocol, family) if p]
        return f"{self.test}[{'-'.join(parts)}]" if parts else self.test


# NetworkPolicy truth table. A cell: which pod of the case's lane reaches which
# target on which port. "open" expects OK; "blocked" accepts any class in
# BLOCKED_CLASSES (kube-router rejects, other controllers drop: REFUSED and
# TIMEOUT both mean blocked).
# Sources: the lane's "client-a", "client-b" (main namespace), "client-peer" (peer
# namespace), "server" (the policy server itself, for egress from it).
POLICY_SOURCES = ("client-a", "client-b", "client-peer", "server")
# Targets: the lane's server by "pod-ip", "cluster-ip" or "dns" (resolve its Service
# name), "client-b" (its pod IP), "other" (a server pod no policy selects, on the
# policy server's node).
POLICY_TARGETS = ("pod-ip", "cluster-ip", "dns", "client-b", "other")
# Ports: (protocol, number). The server names 8080 "http", 8081 "udp", 8082 "alt";
# clients and other servers serve http and udp.
POLICY_PORTS = {"http": ("tcp", 8080), "alt": ("tcp", 8082), "udp": ("udp", 8081)}


@dataclass(frozen=True)
class Cell:
    source: str  # one of POLICY_SOURCES
    target: str  # one of POLICY_TARGETS
    port: str  # one of POLICY_PORTS
    expect: str  # "open" or "blocked"

    @property
    def path(self) -> tuple[str, str, str]:
        """The cell without its expectation: the probe it stands for."""
        return self.source, self.target, self.port


# What a Change does: apply a policy, update one in place (its spec becomes that of
# manifest `to`), delete one, set or remove a label on a lane pod or the peer namespace.
APPLY, UPDATE, DELETE, LABEL_POD, LABEL_NAMESPACE = (
    "apply", "update", "delete", "label-pod", "label-namespace")


@dataclass(frozen=True)
class Change:
    kind: str
    subject: str  # a policy manifest name, a lane pod role (POLICY_SOURCES), or "peer"
    to: str = ""  # UPDATE: the manifest whose spec replaces; labels: "key=value" or "key-"

    def describe(self) -> str:
        if self.kind == UPDATE:
            return f"{self.subject} updated in place to the spec of {self.to}"
        if self.kind in (LABEL_POD, LABEL_NAMESPACE):
            what = "namespace" if self.kind == LABEL_NAMESPACE else "pod"
            label = (f"label {self.to[:-1]} removed" if self.to.endswith("-")
                     else f"labelled {self.to}")
            return f"{what} {self.subject} {label}"
        return f"{self.subject} {'applied' if self.kind == APPLY else 'deleted'}"


@dataclass(frozen=True)
class Step:
    """Changes made while the case's policies stand, then cells that must hold: polled
    until they do (bounded), and the time they took is the time to enforce."""

    changes: tuple[Change, ...]
    cells: tuple[Cell, ...]

    @property
    def phase(self) -> str:
        return "after " + "; ".join(change.describe() for change in self.changes)


# Semantics a case depends on beyond the basics, named for the faults that break
# only them (tests/selfcheck/expected.py reads these, never the case names).
EXCEPT, NAMED_PORT = "ipblock-except", "named-port"
# An ipBlock that must match pods by their IPs (the API means ipBlock for addresses
# outside the cluster; some CNIs never match their own pods by it: such a case skips
# there, saying so: netfacts.IGNORES_POD_IP_BLOCKS).
POD_IP_BLOCK = "ipblock-pod-ips"
SCTP = "sctp"  # a case needing SCTP in the nodes' kernel (skipped without it)


@dataclass(frozen=True)
class PolicyCase:
    """Policies applied together, then every cell must match (polled: enforcement is async).
    `steps` then change policies or labels, each with its own cells; `then_removed`
    cells are checked after deleting the policies again (and undoing every label).
    `relies_on` names semantics (EXCEPT, NAMED_PORT, POD_IP_BLOCK) a cell flips on; `needs` what
    the cluster must have, else the case skips (SCTP)."""

    policies: tuple[str, ...]
    cells: tuple[Cell, ...]
    then_removed: tuple[Cell, ...] = ()
    steps: tuple[Step, ...] = ()
    relies_on: frozenset[str] = frozenset()
    needs: str = ""

    @property
    def every_cell(self) -> tuple[Cell, ...]:
        """Cells of every phase, in order (the same probe may appear in several)."""
        return (*self.cells, *(c for step in self.steps for c in step.cells), *self.then_removed)

    @property
    def paths(self) -> tuple[tuple[str, str, str], ...]:
        """Each distinct probe of the case once, in first-seen order (the baseline)."""
        return tuple(dict.fromkeys(cell.path for cell in self.every_cell))


EXPECTED_CLASSES = {"open": frozenset({OK}), BLOCKED: BLOCKED_CLASSES}


def _cells(*specs: str) -> tuple[Cell, ...]:
    """Cells from 'source target port expect' strings: the truth table reads as a table."""
    return tuple(Cell(*spec.split()) for spec in specs)


POLICY_CASES = {
    "default-deny-ingress": PolicyCase(
        ("deny-ingress",),
        _cells("client-a pod-ip http blocked",
               "client-a cluster-ip http blocked"),
    ),
    "allow-by-pod-selector": PolicyCase(
        ("deny-ingress", "allow-from-client-a"),
        _cells("client-a pod-ip http open",
               "client-b pod-ip http blocked",
               "client-peer pod-ip http blocked"),
    ),
    "allow-by-namespace-selector": PolicyCase(
        ("deny-ingress", "allow-from-peer-namespace"),
        _cells("client-peer pod-ip http open",
               "client-a pod-ip http blocked"),
    ),
    "allow-one-port": PolicyCase(
        ("deny-ingress", "allow-http-port"),
        _cells("client-a pod-ip http open",
               "client-a pod-ip alt blocked"),
    ),
    "deny-egress": PolicyCase(
        ("deny-egress-client-b",),
        _cells("client-b pod-ip http blocked",
               "client-b dns http blocked",
               "client-a pod-ip http open"),
    ),
    "egress-only-dns": PolicyCase(
        ("egress-only-dns-client-b",),
        _cells("client-b dns http open",
               "client-b pod-ip http blocked"),
    ),
    "removing-policy-restores-traffic": PolicyCase(
        ("deny-ingress",),
        _cells("client-a cluster-ip http blocked"),
        then_removed=_cells("client-a cluster-ip http open",
                            "client-a pod-ip http open"),
    ),
    # Named ports resolve on the pod the rule is about: the server for ingress,
    # the `to` pods for egress. The numeric cases above use the other port.
    "named-port-ingress": PolicyCase(
        ("deny-ingress", "allow-named-port-alt"),
        _cells("client-a pod-ip alt open",
               "client-b pod-ip alt open",
               "client-a pod-ip http blocked"),
        relies_on=frozenset({NAMED_PORT}),
    ),
    "named-port-egress": PolicyCase(
        ("egress-named-port-http-client-b",),
        _cells("client-b pod-ip http open",
               "client-b pod-ip alt blocked",
               "client-a pod-ip alt open"),
        relies_on=frozenset({NAMED_PORT}),
    ),
    # client-b's address is inside the CIDR and in its except list: blocked.
    "ipblock-except": PolicyCase(
        ("deny-ingress", "allow-ipblock-except-client-b"),
        _cells("client-a pod-ip http open",
               "client-peer pod-ip http open",
               "client-b pod-ip http blocked"),
        relies_on=frozenset({EXCEPT, POD_IP_BLOCK}),
    ),
    # ...unless another peer admits it: peers add up (on 8080 only, so 8082 shows the
    # except still holds for the first peer).
    "ipblock-except-overlap": PolicyCase(
        ("deny-ingress", "allow-ipblock-except-client-b", "allow-ipblock-client-b-http"),
        _cells("client-b pod-ip http open",
               "client-b pod-ip alt blocked",
               "client-a pod-ip alt open"),
        relies_on=frozenset({EXCEPT, POD_IP_BLOCK}),
    ),
    "ipblock-except-egress": PolicyCase(
        ("egress-ipblock-except-server-client-b",),
        _cells("client-b other http open",
               "client-b pod-ip http blocked",
               "client-a pod-ip http open"),
        relies_on=frozenset({EXCEPT, POD_IP_BLOCK}),
    ),
    "pod-match-expressions": PolicyCase(
        ("deny-ingress", "allow-access-in-a"),
        _cells("client-a pod-ip http open",
               "client-b pod-ip http blocked"),
    ),
    "namespace-match-expressions": PolicyCase(
        ("deny-ingress", "allow-peer-by-expressions"),
        _cells("client-peer pod-ip http open",
               "client-a pod-ip http blocked"),
    ),
    "namespace-default-label": PolicyCase(
        ("deny-ingress", "allow-peer-by-name"),
        _cells("client-peer pod-ip http open",
               "client-a pod-ip http blocked",
               "client-b pod-ip http blocked"),
    ),
    # One peer with both selectors (AND) against two peers (OR).
    "pod-and-namespace-selector": PolicyCase(
        ("deny-ingress", "allow-peer-pod-and-namespace"),
        _cells("client-peer pod-ip http open",
               "client-a pod-ip http blocked",
               "client-b pod-ip http blocked"),
    ),
    "pod-or-namespace-selector": PolicyCase(
        ("deny-ingress", "allow-peer-or-client-a"),
        _cells("client-peer pod-ip http open",
               "client-a pod-ip http open",
               "client-b pod-ip http blocked"),
    ),
    # Two policies select the server (one by labels, one by expressions): their
    # allows add up, per source and port.
    "stacked-overlapping": PolicyCase(
        ("deny-ingress", "allow-http-port", "allow-alt-from-client-a-overlapping"),
        _cells("client-a pod-ip http open",
               "client-a pod-ip alt open",
               "client-b pod-ip http open",
               "client-b pod-ip alt blocked"),
    ),
    "allow-all-precedence": PolicyCase(
        ("deny-ingress", "allow-http-port"),
        _cells("client-b pod-ip http open",
               "client-b pod-ip alt blocked"),
        steps=(Step((Change(APPLY, "allow-all-ingress"),),
                    _cells("client-b pod-ip alt open",
                           "client-peer pod-ip alt open",
                           "client-b pod-ip http open")),),
    ),
    "policy-updated-in-place": PolicyCase(
        ("allow-clients-a-b",),
        _cells("client-a pod-ip http open",
               "client-b pod-ip http open",
               "client-peer pod-ip http blocked"),
        steps=(Step((Change(UPDATE, "allow-clients-a-b", "allow-from-client-a"),),
                    _cells("client-a pod-ip http open",
                           "client-b pod-ip http blocked")),
               Step((Change(UPDATE, "allow-clients-a-b", "allow-clients-a-b"),),
                    _cells("client-b pod-ip http open",
                           "client-peer pod-ip http blocked"))),
    ),
    # client-b relabelled access=a joins the allowed sources, and leaves them again.
    "pod-relabelled": PolicyCase(
        ("deny-ingress", "allow-from-client-a"),
        _cells("client-b pod-ip http blocked",
               "client-a pod-ip http open"),
        steps=(Step((Change(LABEL_POD, "client-b", "packetwalk.io/access=a"),),
                    _cells("client-b pod-ip http open")),
               Step((Change(LABEL_POD, "client-b", "packetwalk.io/access=b"),),
                    _cells("client-b pod-ip http blocked",
                           "client-a pod-ip http open"))),
    ),
    # The server relabelled out of the policy that isolates it, and back in.
    "target-relabelled": PolicyCase(
        ("deny-ingress-unless-exempt",),
        _cells("client-a pod-ip http blocked"),
        steps=(Step((Change(LABEL_POD, "server", "packetwalk.io/policy-exempt=yes"),),
                    _cells("client-a pod-ip http open")),
               Step((Change(LABEL_POD, "server", "packetwalk.io/policy-exempt-"),),
                    _cells("client-a pod-ip http blocked"))),
    ),
    "namespace-relabelled": PolicyCase(
        ("deny-ingress", "allow-from-labelled-namespace"),
        _cells("client-peer pod-ip http blocked"),
        steps=(Step((Change(LABEL_NAMESPACE, "peer", "packetwalk.io/policy-lane-${LANE}=admitted"),),
                    _cells("client-peer pod-ip http open",
                           "client-a pod-ip http blocked")),
               Step((Change(LABEL_NAMESPACE, "peer", "packetwalk.io/policy-lane-${LANE}-"),),
                    _cells("client-peer pod-ip http blocked"))),
    ),
    # policyTypes: an Egress-only policy leaves ingress alone, and the reverse.
    "ingress-egress-independent": PolicyCase(
        ("deny-egress-server", "deny-ingress-client-b"),
        _cells("server other http blocked",
               "client-a pod-ip http open",
               "client-a client-b http blocked",
               "client-b pod-ip http open"),
    ),
    "protocol-only": PolicyCase(
        ("deny-ingress", "allow-tcp-any-port"),
        _cells("client-a pod-ip http open",
               "client-a pod-ip alt open",
               "client-a pod-ip udp blocked"),
    ),
    "udp-only-not-tcp": PolicyCase(
        ("deny-ingress", "allow-udp-only"),
        _cells("client-a pod-ip udp open",
               "client-a pod-ip http blocked"),
    ),
    # The server's ingress allows everything; client-b's own egress deny still wins.
    "egress-deny-beats-ingress-allow": PolicyCase(
        ("allow-all-ingress", "deny-egress-client-b"),
        _cells("client-b pod-ip http blocked",
               "client-a pod-ip http open"),
    ),
    "sctp-not-tcp": PolicyCase(
        ("deny-ingress", "allow-sctp-only"),
        _cells("client-a pod-ip http blocked",
               "client-a pod-ip alt blocked"),
        needs=SCTP,
    ),
}


DNS_NAME_FORMS = ("short", "namespace", "fqdn")
DNS_TRANSPORTS = ("udp", "tcp")

# Paths shared by several hops.
POD_PATH = ("client", "client-node", "server-node*", "server")
SERVICE_PATH = ("client", "client-node", "service*", "server-node", "server")
NODE_PORT_PATH = ("client", "client-node", "nodeport*", "server-node", "server")
DNS_PATH = ("client", "client-node", "dns*")

_HOPS = (
    Hop("pod_ip", "test_pod_ip", "the PodIP", POD_NETWORK, path=POD_PATH,
        next=(Next("pod_ip", "same-node", when="cross-node"),
              Next("node_to_pod", "same-node", when="same-node"))),
    Hop("pod_to_node", "test_pod_to_node", "pod to node", HOST_NETWORK, groups=(CORE, HOST),
        path=("client", "client-node", "server-node*"),
        next=(Next("pod_to_node", "same-node", when="cross-node"),
              Next("node_to_pod", "same-node", when="same-node"))),
    Hop("node_to_pod", "test_node_to_pod", "node to pod", HOST_NETWORK, groups=(CORE, HOST),
        path=("client-node", "server-node", "server*"),
        next=(Next("node_to_pod", "same-node", when="cross-node"),)),
    Hop("mtu", "test_mtu", "a near-MTU payload", PATH_MTU, path=POD_PATH,
        next=(Next("mtu", "same-node", when="cross-node"),
              Next("pod_ip", "same-node", when="same-node")),
        stands_on=("pod_ip",)),
    Hop("source_ip_pod_ip", "test_source_ip_via_pod_ip", "the source IP via PodIP", SOURCE_IP,
        reach_layer=POD_NETWORK, path=("client", "client-node", "server-node", "server*"),
        next=(Next("pod_ip"),),
        stands_on=("pod_ip",)),
    Hop("source_ip_cluster_ip", "test_source_ip_via_cluster_ip", "the source IP via ClusterIP",
        SOURCE_IP, reach_layer=SERVICE,
        path=("client", "client-node", "service", "server-node", "server*"),
        next=(Next("source_ip_pod_ip"),),
        stands_on=("cluster_ip",)),
    Hop("cluster_ip", "test_cluster_ip", "the ClusterIP", SERVICE, path=SERVICE_PATH,
        next=(Next("pod_ip"),),
        stands_on=("pod_ip",)),
    # Every backend must answer: two endpoints on different nodes, so cross-node only.
    Hop("cluster_ip_backends", "test_cluster_ip_every_backend", "every backend of the ClusterIP",
        SERVICE, placements=("cross-node",), path=SERVICE_PATH, next=(Next("cluster_ip"),),
        stands_on=("cluster_ip",)),
    # sessionAffinity ClientIP keeps one client on one of two backends: cross-node only.
    Hop("session_affinity", "test_session_affinity", "session affinity of the ClusterIP",
        SERVICE, placements=("cross-node",), path=SERVICE_PATH,
        next=(Next("cluster_ip_backends"),),
        stands_on=("cluster_ip_backends",)),
    Hop("hairpin", "test_hairpin", "hairpin", HAIRPIN, roles=("server",), placements=(),
        path=("server", "server-node", "service*", "server"),
        next=(Next("cluster_ip", "same-node"),),
        stands_on=("cluster_ip",)),
    Hop("node_port_server_node", "test_node_port_on_server_node",
        "the NodePort on the server's node", NODE_PORT, groups=(CORE, NODE_PORT_GROUP),
        path=NODE_PORT_PATH,
        next=(Next("cluster_ip"),),
        stands_on=("cluster_ip",)),
    Hop("node_port_other_node", "test_node_port_on_other_node",
        "the NodePort on the other node", NODE_PORT, roles=("client", "server", "other"),
        groups=(CORE, NODE_PORT_GROUP),
        path=NODE_PORT_PATH, next=(Next("node_port_server_node"),),
        stands_on=("node_port_server_node",)),
    Hop("dns_resolv_conf", "test_dns_resolv_conf", "the pod's resolv.conf", DNS,
        roles=("client",), placements=(), protocols=(), path=("client*",), by_family=False),
    Hop("dns_service_name", "test_dns_service_name", "resolving the Service name", DNS,
        roles=("client",), placements=(), variants=DNS_NAME_FORMS, protocols=DNS_TRANSPORTS,
        path=DNS_PATH, next=(Next("dns_resolv_conf"),),
        stands_on=("cluster_ip",)),
    # Each DNS server pod asked directly, from the client: on its node (same-node)
    # and on the others (cross-node). Through the Service a lookup reaches one at
    # random; here a server the client cannot reach fails every time.
    # Cross-node needs a second node, as every cross-node hop does ("server" is
    # that node's role), even where DNS pods run off the client's only node.
    Hop("dns_every_backend", "test_dns_every_backend", "every DNS server pod", DNS,
        protocols=DNS_TRANSPORTS, path=DNS_PATH,
        next=(Next("pod_ip"),),
        stands_on=("pod_ip",)),
    Hop("dns_headless", "test_dns_headless", "resolving the headless Service", DNS,
        roles=("client",), placements=(), protocols=DNS_TRANSPORTS, path=DNS_PATH,
        next=(Next("dns_service_name"),),
        stands_on=("dns_service_name",)),
    Hop("dns_connect_by_name", "test_dns_connect_by_name", "connecting by name", DNS,
        roles=("client",), placements=(), path=("client", "dns*", "service", "server"),
        next=(Next("cluster_ip", "same-node"),),
        stands_on=("dns_service_name", "cluster_ip")),
    Hop("network_policy", "test_network_policy", "NetworkPolicy", POLICY_LAYER,
        roles=(), placements=(), variants=tuple(POLICY_CASES), protocols=(), groups=(POLICY,),
        path=("client", "policy*", "server"), next=(Next("pod_ip", "cross-node"),),
        stands_on=("pod_ip", "cluster_ip", "dns_service_name")),
    # North-south. The outside speaks HTTP only, so these have no protocol axis.
    # Egress: same-node is the client pod on the first node, cross-node the one
    # on the second; each must leave with its own node's address (in the test's
    # family, at that family's target).
    Hop("egress_nat", "test_egress_nat", "egress to the external target", EGRESS_NAT,
        protocols=(), path=("client", "client-node", "snat*", "outside"),
        next=(Next("pod_to_node", "same-node"),)),
    # From the vantage point: same-node enters on the server's node, cross-node
    # on the other one.
    Hop("node_port_external_cluster", "test_node_port_external_cluster",
        "the NodePort from outside (policy Cluster)", EXTERNAL_NODE_PORT,
        roles=("server", "other"), protocols=(), groups=(CORE, NODE_PORT_GROUP),
        path=("vantage", "nodeport*", "server-node", "server"),
        next=(Next("node_port_server_node"),),
        stands_on=("node_port_server_node",)),
    Hop("node_port_external_local", "test_node_port_external_local",
        "the NodePort from outside (policy Local)", EXTERNAL_NODE_PORT,
        roles=("server",), placements=("same-node",), protocols=(), groups=(CORE, NODE_PORT_GROUP),
        path=("vantage", "nodeport*", "server"),
        next=(Next("node_port_external_cluster", "same-node"),),
        stands_on=("node_port_external_cluster",)),
    Hop("node_port_external_local_no_backend", "test_node_port_external_local_no_backend",
        "the NodePort from outside on a node without a backend (policy Local)",
        EXTERNAL_NODE_PORT, roles=("server", "other"), placements=("cross-node",),
        protocols=(), expect=BLOCKED, groups=(CORE, NODE_PORT_GROUP), path=("vantage", "nodeport*"),
        next=(Next("node_port_external_local", "same-node"),)),
    Hop("load_balancer", "test_load_balancer", "the LoadBalancer", LOAD_BALANCER,
        roles=("server",), placements=(), protocols=(), groups=(CORE, LB_GROUP),
        path=("vantage", "lb*", "server-node", "server"),
        next=(Next("node_port_external_cluster", "same-node"),),
        stands_on=("node_port_external_cluster",), by_family=False),
    Hop("ingress", "test_ingress", "the Ingress", INGRESS, roles=("server",),
        placements=(), protocols=(), groups=(CORE, INGRESS_GROUP), path=("vantage", "ingress*", "server"),
        next=(Next("cluster_ip", "same-node"),),
        stands_on=("cluster_ip",), by_family=False),
)
HOPS = {hop.name: hop for hop in _HOPS}
HOP_BY_TEST = {hop.test: hop for hop in _HOPS}


def preconditions(name: str) -> tuple[str, ...]:
    """Every hop `name` stands on, followed down (nearest first, each once): the
    hops whose failure blocks it. A hop expecting no answer stands on nothing."""
    found: list[str] = []
    todo = list(HOPS[name].stands_on)
    while todo:
        below = todo.pop(0)
        if below not in found:
            found.append(below)
            todo += HOPS[below].stands_on
    return tuple(found)


class UnknownHop(LookupError):
    """A test declares a hop the catalogue does not have (a collection error)."""


def hop_of(test: object) -> Hop | None:
    """The hop a test declares with @pytest.mark.hop("name"): from a collected item
    (its markers) or a test function (its pytestmark); None for other tests.

    The function must be the hop's `test`: ids and "next: try ..." name it.
    """
    if hasattr(test, "iter_markers"):
        marks = list(test.iter_markers("hop"))
    else:
        marks = [mark for mark in getattr(test, "pytestmark", []) if mark.name == "hop"]
    if not marks:
        return None
    name = marks[0].args[0] if marks[0].args else None
    function = getattr(test, "originalname", None) or getattr(test, "__name__", repr(test))
    hop = HOPS.get(name)
    if hop is None:
        raise UnknownHop(f"{function} is marked hop({name!r}), which is not a hop of "
                         f"packetwalk/hops.py (hops: {', '.join(HOPS)})")
    if hop.test != function:
        raise UnknownHop(f"{function} is marked hop({name!r}), whose test is {hop.test}")
    return hop


@dataclass(frozen=True)
class Param:
    """One test id of a hop: its axis values, the id, and why it skips (or None)."""

    values: tuple[str | None, ...]
    id: str
    skip: str | None


def params(hop: Hop, placements: dict[str, Placement] | None,
           walked: Walked | None = None) -> tuple[list[str], list[Param]]:
    """(argnames, params) for a hop's test, in a fixed order on every xdist worker.

    Unnamed axes are left out of the id; a placement lacking a node for one of
    the hop's roles is skipped with its reason, never run on fewer nodes.
    Hops without a placement axis run their roles from "same-node".
    With `walked` (the run's families), a hop with a family gets the `family`
    argument last: one value per family on a dual-stack cluster, each id ending in
    it; on a single-stack cluster the one family, the id unchanged (families.py).
    A family the run does not walk skips with why; nothing walkable as asked
    (--ip-family ipv6 on an IPv4 cluster) skips every hop test, family or not.
    """
    axes = (("placement", hop.placements), ("variant", hop.variants), ("protocol", hop.protocols))
    names = [name for name, values in axes if values]
    families: tuple[str | None, ...] = (None,)
    if walked is not None and hop.by_family:
        names.append("family")
        families = walked.axis
    result = []
    for placement in hop.placements or (None,):
        for variant in hop.variants or (None,):
            for protocol in hop.protocols or (None,):
                for family in families:
                    shown = tuple(v for v in (placement, variant, protocol,
                                              id_suffix(family, walked) if walked else None)
                                  if v is not None)
                    values = tuple(v for v in (placement, variant, protocol) if v is not None)
                    if "family" in names:
                        values += (family,)
                    if placements is None:
                        skip = "packetwalk is not connected to a cluster"
                    else:
                        skip = placements[placement or "same-node"].missing(hop.roles)
                    if walked is not None and skip is None:
                        skip = walked.skip_for(family if hop.by_family else None)
                    result.append(Param(values, "-".join(shown), skip))
    return names, result


def next_step(hop: str, placement: str | None, protocol: str | None,
              family: str | None = None) -> str | None:
    """'try the PodIP: test_pod_ip[cross-node-udp]', or None at the bottom of the walk.
    `family`: the failing test's id part for its family (only on a dual-stack
    cluster): the next step stays in it, when the next hop has a family. A test
    without a family passes the run's primary family there (Walk._next_suffix)."""
    entry = HOPS.get(hop)
    step = entry.step_down(placement) if entry is not None else None
    if step is None:
        return None
    target = HOPS[step.hop]
    where = step.placement or placement
    where = where if target.placements and where in target.placements else None
    if not where and target.placements:
        where = target.placements[0]
    proto = protocol if protocol in target.protocols else (target.protocols or (None,))[0]
    variant = target.variants[-1] if target.variants else None
    label = f"{target.title} {where}" if where and where != placement else target.title
    suffix = family if target.by_family else None
    return f"try {label}: {target.test_id(where, variant, proto, suffix)}"
