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
SERVICE = Layer(4, "Service translation (ClusterIP)", "kube-proxy rules, EndpointSlices")
HAIRPIN = Layer(5, "hairpin", "bridge hairpin mode, kube-proxy hairpin masquerade")
NODE_PORT = Layer(6, "NodePort", "kube-proxy NodePort rules, route_localnet, conntrack")
DNS = Layer(7, "cluster DNS", "CoreDNS pods, kube-dns Service, kubelet clusterDNS")
POLICY_LAYER = Layer(8, "NetworkPolicy enforcement", "the policy controller (kube-router)")
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

    def test_id(self, placement: str | None, variant: str | None, protocol: str | None) -> str:
        parts = [p for p in (placement, variant, protocol) if p]
        return f"{self.test}[{'-'.join(parts)}]" if parts else self.test


# NetworkPolicy truth table. A cell: which client reaches which target on which port.
# "open" expects OK; "blocked" accepts any class in BLOCKED_CLASSES (kube-router
# rejects, other controllers drop: REFUSED and TIMEOUT both mean blocked).
@dataclass(frozen=True)
class Cell:
    source: str  # policy client: "client-a" (selected), "client-b", "client-peer"
    target: str  # "pod-ip", "cluster-ip", or "dns" (resolve the server's Service name)
    port: str  # "http" (8080, allowed by the port-scoped policy) or "alt" (8082)
    expect: str  # "open" or "blocked"


@dataclass(frozen=True)
class PolicyCase:
    """Policies applied together, then every cell must match (polled: enforcement is async).
    `then_removed` cells are checked after deleting the policies again."""

    policies: tuple[str, ...]
    cells: tuple[Cell, ...]
    then_removed: tuple[Cell, ...] = ()


EXPECTED_CLASSES = {"open": frozenset({OK}), BLOCKED: BLOCKED_CLASSES}

POLICY_CASES = {
    "default-deny-ingress": PolicyCase(
        ("deny-ingress",),
        (Cell("client-a", "pod-ip", "http", "blocked"),
         Cell("client-a", "cluster-ip", "http", "blocked")),
    ),
    "allow-by-pod-selector": PolicyCase(
        ("deny-ingress", "allow-from-client-a"),
        (Cell("client-a", "pod-ip", "http", "open"),
         Cell("client-b", "pod-ip", "http", "blocked"),
         Cell("client-peer", "pod-ip", "http", "blocked")),
    ),
    "allow-by-namespace-selector": PolicyCase(
        ("deny-ingress", "allow-from-peer-namespace"),
        (Cell("client-peer", "pod-ip", "http", "open"),
         Cell("client-a", "pod-ip", "http", "blocked")),
    ),
    "allow-one-port": PolicyCase(
        ("deny-ingress", "allow-http-port"),
        (Cell("client-a", "pod-ip", "http", "open"),
         Cell("client-a", "pod-ip", "alt", "blocked")),
    ),
    "deny-egress": PolicyCase(
        ("deny-egress-client-b",),
        (Cell("client-b", "pod-ip", "http", "blocked"),
         Cell("client-b", "dns", "http", "blocked"),
         Cell("client-a", "pod-ip", "http", "open")),
    ),
    "egress-only-dns": PolicyCase(
        ("egress-only-dns-client-b",),
        (Cell("client-b", "dns", "http", "open"),
         Cell("client-b", "pod-ip", "http", "blocked")),
    ),
    "removing-policy-restores-traffic": PolicyCase(
        ("deny-ingress",),
        (Cell("client-a", "cluster-ip", "http", "blocked"),),
        then_removed=(Cell("client-a", "cluster-ip", "http", "open"),
                      Cell("client-a", "pod-ip", "http", "open")),
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
              Next("pod_ip", "same-node", when="same-node"))),
    Hop("source_ip_pod_ip", "test_source_ip_via_pod_ip", "the source IP via PodIP", SOURCE_IP,
        reach_layer=POD_NETWORK, path=("client", "client-node", "server-node", "server*"),
        next=(Next("pod_ip"),)),
    Hop("source_ip_cluster_ip", "test_source_ip_via_cluster_ip", "the source IP via ClusterIP",
        SOURCE_IP, reach_layer=SERVICE,
        path=("client", "client-node", "service", "server-node", "server*"),
        next=(Next("source_ip_pod_ip"),)),
    Hop("cluster_ip", "test_cluster_ip", "the ClusterIP", SERVICE, path=SERVICE_PATH,
        next=(Next("pod_ip"),)),
    # Every backend must answer: two endpoints on different nodes, so cross-node only.
    Hop("cluster_ip_backends", "test_cluster_ip_every_backend", "every backend of the ClusterIP",
        SERVICE, placements=("cross-node",), path=SERVICE_PATH, next=(Next("cluster_ip"),)),
    # sessionAffinity ClientIP keeps one client on one of two backends: cross-node only.
    Hop("session_affinity", "test_session_affinity", "session affinity of the ClusterIP",
        SERVICE, placements=("cross-node",), path=SERVICE_PATH,
        next=(Next("cluster_ip_backends"),)),
    Hop("hairpin", "test_hairpin", "hairpin", HAIRPIN, roles=("server",), placements=(),
        path=("server", "server-node", "service*", "server"),
        next=(Next("cluster_ip", "same-node"),)),
    Hop("node_port_server_node", "test_node_port_on_server_node",
        "the NodePort on the server's node", NODE_PORT, groups=(CORE, NODE_PORT_GROUP),
        path=NODE_PORT_PATH,
        next=(Next("cluster_ip"),)),
    Hop("node_port_other_node", "test_node_port_on_other_node",
        "the NodePort on the other node", NODE_PORT, roles=("client", "server", "other"),
        groups=(CORE, NODE_PORT_GROUP),
        path=NODE_PORT_PATH, next=(Next("node_port_server_node"),)),
    Hop("dns_resolv_conf", "test_dns_resolv_conf", "the pod's resolv.conf", DNS,
        roles=("client",), placements=(), protocols=(), path=("client*",)),
    Hop("dns_service_name", "test_dns_service_name", "resolving the Service name", DNS,
        roles=("client",), placements=(), variants=DNS_NAME_FORMS, protocols=DNS_TRANSPORTS,
        path=DNS_PATH, next=(Next("dns_resolv_conf"),)),
    Hop("dns_headless", "test_dns_headless", "resolving the headless Service", DNS,
        roles=("client",), placements=(), protocols=DNS_TRANSPORTS, path=DNS_PATH,
        next=(Next("dns_service_name"),)),
    Hop("dns_connect_by_name", "test_dns_connect_by_name", "connecting by name", DNS,
        roles=("client",), placements=(), path=("client", "dns*", "service", "server"),
        next=(Next("cluster_ip", "same-node"),)),
    Hop("network_policy", "test_network_policy", "NetworkPolicy", POLICY_LAYER,
        roles=(), placements=(), variants=tuple(POLICY_CASES), protocols=(), groups=(POLICY,),
        path=("client", "policy*", "server"), next=(Next("pod_ip", "cross-node"),)),
    # North-south. The outside speaks HTTP only, so these have no protocol axis.
    # Egress: same-node is the client pod on the first node, cross-node the one
    # on the second; each must leave with its own node's address.
    Hop("egress_nat", "test_egress_nat", "egress to the external target", EGRESS_NAT,
        protocols=(), path=("client", "client-node", "snat*", "outside"),
        next=(Next("pod_to_node", "same-node"),)),
    # From the vantage point: same-node enters on the server's node, cross-node
    # on the other one.
    Hop("node_port_external_cluster", "test_node_port_external_cluster",
        "the NodePort from outside (policy Cluster)", EXTERNAL_NODE_PORT,
        roles=("server", "other"), protocols=(), groups=(CORE, NODE_PORT_GROUP),
        path=("vantage", "nodeport*", "server-node", "server"),
        next=(Next("node_port_server_node"),)),
    Hop("node_port_external_local", "test_node_port_external_local",
        "the NodePort from outside (policy Local)", EXTERNAL_NODE_PORT,
        roles=("server",), placements=("same-node",), protocols=(), groups=(CORE, NODE_PORT_GROUP),
        path=("vantage", "nodeport*", "server"),
        next=(Next("node_port_external_cluster", "same-node"),)),
    Hop("node_port_external_local_no_backend", "test_node_port_external_local_no_backend",
        "the NodePort from outside on a node without a backend (policy Local)",
        EXTERNAL_NODE_PORT, roles=("server", "other"), placements=("cross-node",),
        protocols=(), expect=BLOCKED, groups=(CORE, NODE_PORT_GROUP), path=("vantage", "nodeport*"),
        next=(Next("node_port_external_local", "same-node"),)),
    Hop("load_balancer", "test_load_balancer", "the LoadBalancer", LOAD_BALANCER,
        roles=("server",), placements=(), protocols=(), groups=(CORE, LB_GROUP),
        path=("vantage", "lb*", "server-node", "server"),
        next=(Next("node_port_external_cluster", "same-node"),)),
    Hop("ingress", "test_ingress", "the Ingress", INGRESS, roles=("server",),
        placements=(), protocols=(), groups=(CORE, INGRESS_GROUP), path=("vantage", "ingress*", "server"),
        next=(Next("cluster_ip", "same-node"),)),
)
HOPS = {hop.name: hop for hop in _HOPS}
HOP_BY_TEST = {hop.test: hop for hop in _HOPS}


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

    values: tuple[str, ...]
    id: str
    skip: str | None


def params(hop: Hop, placements: dict[str, Placement] | None) -> tuple[list[str], list[Param]]:
    """(argnames, params) for a hop's test, in a fixed order on every xdist worker.

    Unnamed axes are left out of the id; a placement lacking a node for one of
    the hop's roles is skipped with its reason, never run on fewer nodes.
    Hops without a placement axis run their roles from "same-node".
    """
    axes = (("placement", hop.placements), ("variant", hop.variants), ("protocol", hop.protocols))
    names = [name for name, values in axes if values]
    result = []
    for placement in hop.placements or (None,):
        for variant in hop.variants or (None,):
            for protocol in hop.protocols or (None,):
                values = tuple(v for v in (placement, variant, protocol) if v is not None)
                if placements is None:
                    skip = "packetwalk is not connected to a cluster"
                else:
                    skip = placements[placement or "same-node"].missing(hop.roles)
                result.append(Param(values, "-".join(values), skip))
    return names, result


def next_step(hop: str, placement: str | None, protocol: str | None) -> str | None:
    """'try the PodIP: test_pod_ip[cross-node-udp]', or None at the bottom of the walk."""
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
    return f"try {label}: {target.test_id(where, variant, proto)}"
