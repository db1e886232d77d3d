"""Where the two ends of a probe run, derived from the cluster's real nodes.

Placements are computed from a sorted list of schedulable nodes, so every
xdist worker builds the same ones and collects the same test ids.
Only the first two schedulable nodes are used: a placement needs at most two,
and the number of pods must not grow with the size of the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packetwalk.families import of_family
from packetwalk.tiers import NodePool

NEEDS_TWO_NODES = "needs 2 schedulable nodes"
# Taint effects that keep our pods off a node. PreferNoSchedule only lowers a score.
BLOCKING_TAINT_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True)
class Node:
    """A schedulable node: its name, the IP other nodes reach it on, and a
    short DNS-label-safe name used in pod and Service names."""

    name: str
    ip: str
    slug: str
    # Every address of the kind `ip` is (its InternalIPs; a dual-stack node has one per
    # family, kubelet --node-ip=v4,v6): a hop in one family dials the node in it.
    ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # From JSON (xdist workers) the addresses come as a list; a Node stays hashable.
        object.__setattr__(self, "ips", tuple(self.ips) or ((self.ip,) if self.ip else ()))

    def ip_of(self, family: str | None) -> str | None:
        """Its address in `family` (None: `ip`, the first), or None when it has none."""
        return self.ip if family is None else of_family(self.ips, family)


@dataclass(frozen=True)
class Placement:
    """Which node each role of a probe runs on.

    `client` sends, `server` answers, `other` is the node that is not the
    server's (used to reach a NodePort on the "wrong" node). A role is None
    when the cluster has too few schedulable nodes for it.
    """

    id: str
    client: Node | None
    server: Node | None
    other: Node | None

    def missing(self, roles: tuple[str, ...]) -> str | None:
        """The skip reason if any of `roles` has no node here, else None."""
        if any(getattr(self, role) is None for role in roles):
            return NEEDS_TWO_NODES
        return None


def is_schedulable(node: dict, pool: NodePool | None = None) -> bool:
    """Ready, not cordoned, and no taint that keeps our pods away; with a `pool`
    (--node-selector, --toleration), also carrying its labels, and taints it
    tolerates no longer keep them away.

    `node` is the API object as a plain dict (ApiClient.sanitize_for_serialization),
    so this stays pure and testable without a cluster.
    """
    return why_unusable(node, pool) is None


def why_unusable(node: dict, pool: NodePool | None = None) -> str | None:
    """Why the run leaves `node` out ("cordoned", "tainted k=v:NoSchedule", ...), or None."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    if pool is not None and not pool.matches((node.get("metadata") or {}).get("labels") or {}):
        return "not in the node pool"
    blocking = [t for t in spec.get("taints") or []
                if t.get("effect") in BLOCKING_TAINT_EFFECTS and not (pool and pool.tolerated(t))]
    if blocking:
        t = blocking[0]
        return f"tainted {t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
    conditions = (node.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return "not Ready"
    return None


def left_out(node_dicts: list[dict], pool: NodePool | None = None) -> list[str]:
    """'<node> (<why>)' for each node the run cannot use, sorted by name."""
    found = []
    for raw in sorted(node_dicts, key=lambda n: n["metadata"]["name"]):
        why = why_unusable(raw, pool) or (None if internal_ip(raw) else "no address")
        if why:
            found.append(f"{raw['metadata']['name']} ({why})")
    return found


def internal_ip(node: dict) -> str | None:
    """The node's InternalIP (what pods and other nodes dial), else its first address."""
    addresses = (node.get("status") or {}).get("addresses") or []
    for wanted in ("InternalIP", "ExternalIP"):
        for address in addresses:
            if address.get("type") == wanted:
                return address.get("address")
    return None


def node_ips(node: dict) -> tuple[str, ...]:
    """Every address of the type internal_ip picked (a dual-stack node lists an
    InternalIP per family), in the order the node lists them."""
    addresses = (node.get("status") or {}).get("addresses") or []
    for wanted in ("InternalIP", "ExternalIP"):
        found = tuple(a["address"] for a in addresses if a.get("type") == wanted and a.get("address"))
        if found:
            return found
    return ()


def slugify(name: str, limit: int = 40) -> str:
    """A lowercase DNS label fragment: node names may hold dots or be long,
    and pod, Service and label names must not."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return slug[:limit].rstrip("-") or "node"


def schedulable_nodes(node_dicts: list[dict], pool: NodePool | None = None) -> list[Node]:
    """Schedulable nodes (of `pool`, if given) sorted by name, each with a unique slug."""
    nodes: list[Node] = []
    taken: set[str] = set()
    for raw in sorted(node_dicts, key=lambda n: n["metadata"]["name"]):
        ip = internal_ip(raw)
        if not is_schedulable(raw, pool) or ip is None:
            continue
        slug = slugify(raw["metadata"]["name"])
        if slug in taken:
            slug = f"{slug[:36]}-{len(nodes)}"
        taken.add(slug)
        nodes.append(Node(name=raw["metadata"]["name"], ip=ip, slug=slug, ips=node_ips(raw)))
    return nodes


def choose_nodes(nodes: list[Node], wanted: list[str] | None) -> list[Node]:
    """Restrict to the nodes named with --nodes (in the given order), all schedulable."""
    if not wanted:
        return nodes
    by_name = {n.name: n for n in nodes}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise ValueError(f"--nodes {', '.join(unknown)}: not schedulable "
                         f"(schedulable: {', '.join(by_name) or 'none'})")
    return [by_name[name] for name in wanted]


def build_placements(nodes: list[Node]) -> dict[str, Placement]:
    """same-node and cross-node placements over the first two nodes.

    Host-network probes reuse these: the "server" or "client" role is then
    played by the node itself (a hostNetwork pod), so pod-to-node and
    node-to-pod come out as same-node and cross-node too.
    """
    if not nodes:
        raise ValueError("no schedulable nodes")
    first = nodes[0]
    second = nodes[1] if len(nodes) > 1 else None
    return {
        "same-node": Placement("same-node", client=first, server=first, other=second),
        "cross-node": Placement("cross-node", client=first, server=second, other=first),
    }


def used_nodes(nodes: list[Node]) -> list[Node]:
    """The nodes that get workloads: the ones placements refer to."""
    return nodes[:2]
