"""The lab's address plan and node list: pure data, no side effects.

Every range here is routed into the lab or blackholed in the host namespace
(see network.host_routes), so no lab packet can fall through to the uplink.
The simulated outside world uses a documentation range (RFC 5737).
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

UNDERLAY = IPv4Network("10.250.0.0/24")  # the "datacenter" bridge between nodes
POD_CIDR = IPv4Network("10.244.0.0/16")  # the controller-manager hands out a /24 per node
SERVICE_CIDR = IPv4Network("10.96.0.0/16")
OUTSIDE = IPv4Network("198.51.100.0/24")  # TEST-NET-2: the "internet"

HOST_IP = IPv4Address("10.250.0.1")  # the host's leg on the underlay, to reach the API server
ROUTER_IP = IPv4Address("10.250.0.254")  # the outside namespace's leg: every node's default gateway
OUTSIDE_HOST_IP = IPv4Address("198.51.100.10")
OUTSIDE_HTTP_PORT = 80
API_SERVER_IP = IPv4Address("10.250.0.10")
API_PORT = 6443
KUBERNETES_SERVICE_IP = IPv4Address("10.96.0.1")
DNS_SERVICE_IP = IPv4Address("10.96.0.10")
CLUSTER_DOMAIN = "cluster.local"

# IPv6, for `lab up --ip-family dual|ipv6` (issue 17; docs/ipv6.md). This machine's uplink
# holds fd00::/64 and its IPv6 default route leads out, so every lab range sits in a
# ULA /48 of its own, blackholed whole in the host (with 2001:db8::/32) before the
# lab's more specific routes go in. The ranges vary only the fourth group:
# fd10:0:244::/56, say, would be another /48, outside the blackhole.
ULA = IPv6Network("fd10::/48")
DOCUMENTATION6 = IPv6Network("2001:db8::/32")  # RFC 3849: the IPv6 "internet"
UNDERLAY6 = IPv6Network("fd10:0:0:2500::/64")
POD_CIDR6 = IPv6Network("fd10:0:0:4400::/56")  # a /64 per node: 256 nodes
NODE_POD_PREFIX6 = 64  # --node-cidr-mask-size-ipv6
SERVICE_CIDR6 = IPv6Network("fd10:0:0:9600::/112")  # the old allocator's limit is /108
OUTSIDE6 = IPv6Network("2001:db8:100::/64")
HOST_IP6 = UNDERLAY6[0x1]
ROUTER_IP6 = UNDERLAY6[0xfe]
API_SERVER_IP6 = UNDERLAY6[0x10]
OUTSIDE_HOST_IP6 = OUTSIDE6[0x10]
KUBERNETES_SERVICE_IP6 = SERVICE_CIDR6[0x1]
DNS_SERVICE_IP6 = SERVICE_CIDR6[0xa]

# `lab up --ip-family`: ipv4 is the lab as it always was; dual adds IPv6 beside it;
# ipv6 is a single-stack IPv6 cluster on the dual lab's wires (bridge CNI only so far;
# ipv6 built and unit-tested, not yet run on the lab: docs/ipv6.md).
IP_FAMILIES = ("ipv4", "dual", "ipv6")
DEFAULT_IP_FAMILY = "ipv4"
# Whether the nodes masquerade pods' traffic leaving the cluster, per family: both, as
# a cloud VM behind a NAT gateway. The one switch: network.make_node puts PW-MASQ in
# iptables / ip6tables only for a family True here, and lab.json says the same, so the
# egress test expects the node's address in a NATed family and the pod's own in one
# routed as it is (a routed-IPv6 variant would flip "ipv6": docs/ipv6.md).
EGRESS_NAT = {"ipv4": True, "ipv6": True}

BRIDGE = "pw-br0"
OUTSIDE_NS = "pw-outside"
CLUSTER_NAME = "packetwalk-lab"


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    control_plane: bool

    @property
    def ip(self) -> IPv4Address:
        return API_SERVER_IP + self.index

    @property
    def ip6(self) -> IPv6Address:
        """::10 for the control plane, ::11, ::12 ... for the workers: as the IPv4 ones read."""
        return API_SERVER_IP6 + self.index

    @property
    def host_veth(self) -> str:
        return f"pwv{self.index}"  # interface names are limited to 15 characters


def nodes(workers: int) -> list[Node]:
    if workers < 1:
        raise ValueError("the lab needs at least one worker")
    names = ["pw-control-plane", "pw-worker"] + [f"pw-worker{i}" for i in range(2, workers + 1)]
    return [Node(name, i, control_plane=(i == 0)) for i, name in enumerate(names)]


def lab_ranges() -> list[IPv4Network]:
    """Every range the lab owns; the safety test checks each with `ip route get`."""
    return [UNDERLAY, POD_CIDR, SERVICE_CIDR, OUTSIDE]


def lab_ranges6() -> list[IPv6Network]:
    """Every IPv6 range a dual-stack or IPv6-only lab owns (kept out of lab_ranges: an
    IPv4 lab routes none of them; the safety test checks these on such a lab only)."""
    return [UNDERLAY6, POD_CIDR6, SERVICE_CIDR6, OUTSIDE6]


def dual(family: str) -> bool:
    """Whether a lab of this --ip-family is dual-stack (IPv4 and IPv6 in Kubernetes)."""
    return family == "dual"


def ipv6_only(family: str) -> bool:
    """Whether a lab of this --ip-family is a single-stack IPv6 cluster."""
    return family == "ipv6"


def has_ipv4(family: str) -> bool:
    """Whether pods, Services and nodes' InternalIPs have IPv4 in a lab of this family."""
    return not ipv6_only(family)


def has_ipv6(family: str) -> bool:
    """Whether the lab's wires carry IPv6: the host's blackholes, the underlay /64, the
    nodes' and the outside's IPv6 (dual and ipv6 alike; an IPv6-only lab keeps the
    IPv4 underlay beside it, unused by Kubernetes)."""
    return dual(family) or ipv6_only(family)
