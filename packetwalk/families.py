"""IP families: which ones the cluster has, which ones a run walks, and how ids say it. Pure.

The cluster's families are read from what it shows before the run deploys
anything (cluster.discover_facts hands the plain objects here): the nodes'
podCIDRs and the DNS server pods' podIPs say which families pods get addresses
in; the nodes' InternalIPs which families nodes are reached on; the DNS
Service's ipFamilies which families its ClusterIPs are in (a dual-stack
cluster may still create it SingleStack, so that last one is a fact for the
report, never the reason to walk or not).

The id rule (docs/ipv6.md): on a dual-stack cluster every hop with a family
runs once per family and its id ends in the family (`cross-node-tcp-ipv6`,
`cross-node-tcp-ipv4`); on a single-stack cluster ids carry no family, so
they are what they were before families existed and baselines keep matching.
Whether ids carry the family depends on the cluster only, never on
--ip-family: a run restricted to IPv6 has the same ids as the IPv6 half of a
full run, so either compares with the other's baseline.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPV4, IPV6 = "ipv4", "ipv6"
FAMILIES = (IPV4, IPV6)  # the order twins are collected and listed in
AUTO, DUAL = "auto", "dual"
CHOICES = (AUTO, IPV4, IPV6, DUAL)  # --ip-family
NAMES = {IPV4: "IPv4", IPV6: "IPv6"}  # how sentences write them
# The Service field values (spec.ipFamilies) for each family.
SERVICE_FAMILIES = {IPV4: "IPv4", IPV6: "IPv6"}
# The DNS record type that holds an address of each family.
RECORD_TYPES = {IPV4: "A", IPV6: "AAAA"}
# IP header + UDP header: 20 + 8 for IPv4; 40 + 8 for IPv6 (no options, no extension
# headers: a near-MTU datagram must fill the packet exactly, not exceed it).
IP_UDP_HEADERS = {IPV4: 28, IPV6: 48}
# The least MTU an IPv6 link may have (RFC 8200, 5): below it IPv6 does not work at all.
IPV6_MIN_MTU = 1280


def family_of(address: str) -> str | None:
    """'ipv4' or 'ipv6' for an address or a CIDR; None for anything else (a hostname)."""
    try:
        version = ipaddress.ip_network(address.strip().strip("[]"), strict=False).version
    except ValueError:
        return None
    return IPV4 if version == 4 else IPV6


def host_cidr(address: str) -> str:
    """One address as a host CIDR: /32, or /128 for IPv6 (ipBlocks, iptables' `-d`)."""
    parsed = ipaddress.ip_address(address)
    return f"{parsed}/{parsed.max_prefixlen}"


def of_family(addresses: list[str] | tuple[str, ...], family: str | None) -> str | None:
    """The first of `addresses` in `family`; with no family, the first of all."""
    if family is None:
        return addresses[0] if addresses else None
    return next((a for a in addresses if family_of(a) == family), None)


def by_family(addresses: list[str] | tuple[str, ...]) -> dict[str, str]:
    """{family: its first address} of `addresses`, in FAMILIES order."""
    found = {family: of_family(addresses, family) for family in FAMILIES}
    return {family: address for family, address in found.items() if address}


def _ordered(families: set[str]) -> tuple[str, ...]:
    return tuple(f for f in FAMILIES if f in families)


@dataclass(frozen=True)
class ClusterFamilies:
    """The families the cluster shows, by what shows them, each in FAMILIES order.
    `pods` decides: a family pods get no address in cannot be walked."""

    pods: tuple[str, ...] = (IPV4,)
    nodes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # the DNS Service's ipFamilies: a fact, not a decision
    evidence: str = ""  # what `pods` was read from, for the skip reasons and the report

    @property
    def dual_stack(self) -> bool:
        """Pods get addresses of both families: hops with a family run as twins."""
        return len(self.pods) == 2

    def describe(self) -> str:
        """'dual-stack (pods ipv4+ipv6 from the nodes' podCIDRs; nodes ipv4+ipv6; DNS Service ipv4)'."""
        kind = "dual-stack" if self.dual_stack else f"single-stack {'+'.join(self.pods) or 'none'}"
        parts = [f"pods {'+'.join(self.pods) or 'none'}" + (f" from {self.evidence}" if self.evidence else "")]
        parts.append(f"nodes {'+'.join(self.nodes) or 'none'}")
        if self.services:
            parts.append(f"DNS Service {'+'.join(self.services)}")
        return f"{kind} ({'; '.join(parts)})"


def detect(nodes: list[dict], dns_service: dict | None = None,
           dns_pod_ips: list[str] | tuple[str, ...] = ()) -> ClusterFamilies:
    """The cluster's families from plain API objects (ApiClient.sanitize_for_serialization).

    Pods: the families of the nodes' podCIDRs, when the nodes have any (node CIDR
    allocation); else of the DNS server pods' IPs (a CNI with its own IPAM leaves
    podCIDRs empty, but its pods show their addresses); IPv4 when neither says, as
    every cluster before dual-stack was. Nodes: the families of their InternalIPs.
    """
    cidrs = [cidr for node in nodes
             for cidr in ((node.get("spec") or {}).get("podCIDRs")
                          or [c for c in [(node.get("spec") or {}).get("podCIDR")] if c])]
    if cidrs:
        pods, evidence = {family_of(c) for c in cidrs} - {None}, "the nodes' podCIDRs"
    elif dns_pod_ips:
        pods, evidence = {family_of(ip) for ip in dns_pod_ips} - {None}, "the DNS pods' IPs"
    else:
        pods, evidence = {IPV4}, "nothing (no podCIDRs, no DNS pod IPs): IPv4 assumed"
    node_families = {family_of(a.get("address", "")) for node in nodes
                     for a in (node.get("status") or {}).get("addresses") or []
                     if a.get("type") in ("InternalIP", "ExternalIP")} - {None}
    service = ((dns_service or {}).get("spec") or {})
    services = {family for family, name in SERVICE_FAMILIES.items()
                if name in (service.get("ipFamilies") or [])}
    if not services:  # an API server older than dual-stack: the ClusterIP says
        services = {family_of(ip) for ip in [service.get("clusterIP") or ""]} - {None}
    return ClusterFamilies(_ordered(pods), _ordered(node_families), _ordered(services), evidence)


@dataclass(frozen=True)
class Walked:
    """Which families a run walks, and what ids look like: `families` to walk (in
    order), `suffixed` whether ids end in the family (the cluster is dual-stack),
    `skip` why nothing can be walked as asked ('' when something can)."""

    families: tuple[str, ...]
    suffixed: bool
    skip: str = ""

    @property
    def axis(self) -> tuple[str | None, ...]:
        """The family values a hop with a family is parametrized over: each family on a
        dual-stack cluster; on a single-stack one the one family, and no id suffix."""
        if self.suffixed:
            return FAMILIES
        return (self.families[0] if self.families else None,)

    def skip_for(self, family: str | None) -> str | None:
        """Why a hop's test in `family` skips: nothing walkable as asked, or this
        family not asked (a dual-stack run restricted with --ip-family)."""
        if self.skip:
            return self.skip
        if family is not None and family not in self.families:
            return f"--ip-family {self.families[0]}: {NAMES[family]} is not walked in this run"
        return None


def walk(asked: str, cluster: ClusterFamilies) -> Walked:
    """The families a run walks for --ip-family `asked` (auto, ipv4, ipv6, dual)."""
    have = cluster.pods
    suffixed = cluster.dual_stack
    if asked == AUTO:
        return Walked(have, suffixed)
    if asked == DUAL:
        missing = [NAMES[f] for f in FAMILIES if f not in have]
        if missing:
            return Walked(have, suffixed, f"--ip-family dual: the cluster is not dual-stack, "
                                          f"it has no {' or '.join(missing)}: {cluster.describe()}")
        return Walked(have, suffixed)
    if asked not in have:
        return Walked((asked,), suffixed, f"--ip-family {asked}: the cluster has no "
                                          f"{NAMES[asked]}: {cluster.describe()}")
    return Walked((asked,), suffixed)


def id_suffix(family: str | None, walked: Walked) -> str | None:
    """The id part a family adds: the family on a dual-stack cluster, else none."""
    return family if walked.suffixed else None
