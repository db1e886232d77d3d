"""Which cells a watch (`--during CMD`) probes, and how: the plan. Pure.

A watch starts every cell's loop before CMD starts, which the hop tests cannot do
themselves: an xdist worker runs its tests one after another, so a test that started
its loop and waited for CMD would hold back the next test's loop until CMD was over.
So the controller plans the cells from the hop catalogue and the run's inventory,
starts their loops, runs CMD, and hands each cell's outages to the workers, whose hop
tests then judge their own cell under their usual ids.

Watched: the hops whose test is one request from the placement's client pod for the
server's hostname: PodIP, ClusterIP and NodePort (on the server's node and on the
other), each placement and protocol; and connecting by name over TCP, where each try
resolves the Service's short name through the pod's resolver (curl's, bounded by its
--max-time), so a CoreDNS rollout or a DNS fault shows as outages classed DNS. Its
UDP twin is not watched: bash resolves a /dev/udp name with no bound on the wait. Their targets below are the ones the tests ask
for; a test finding its cell planned to another target errors (Walk.ask), so the two
cannot drift apart unseen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from packetwalk.hops import HOPS, Hop
from packetwalk.inventory import Inventory
from packetwalk.placement import Placement
from packetwalk.probes import Source, Target

REQUEST = "hostname"


def _pod_ip(inventory: Inventory, placement: Placement, protocol: str) -> Target:
    return inventory.pod_on("server", placement.server.name).target(protocol)


def _cluster_ip(inventory: Inventory, placement: Placement, protocol: str) -> Target:
    return inventory.server_service(placement.server).target(protocol)


def _node_port_on_server_node(inventory: Inventory, placement: Placement,
                              protocol: str) -> Target:
    return inventory.node_port_service(placement.server).node_port_target(placement.server,
                                                                          protocol)


def _node_port_on_other_node(inventory: Inventory, placement: Placement,
                             protocol: str) -> Target:
    return inventory.node_port_service(placement.server).node_port_target(placement.other,
                                                                          protocol)


TARGETS: dict[str, Callable[[Inventory, Placement, str], Target]] = {
    "pod_ip": _pod_ip, "cluster_ip": _cluster_ip,
    "node_port_server_node": _node_port_on_server_node,
    "node_port_other_node": _node_port_on_other_node}
# A hop whose tries dial a name: the name, from the Service the test connects to.
BY_NAME = "dns_connect_by_name"
BY_NAME_PROTOCOLS = ("tcp",)  # see the module doc: no bounded by-name try over UDP
WATCHED = (*TARGETS, BY_NAME)
NOT_WATCHED = ("not watched: --during probes the PodIP, ClusterIP and NodePort cells and "
               "connecting by name over TCP continuously; this hop runs without --during")
NOT_WATCHED_UDP_BY_NAME = ("not watched: a by-name try over UDP resolves in bash, with no "
                           "bound on the wait (the TCP twin is watched)")


@dataclass(frozen=True)
class WatchCell:
    """One watched cell: its test id, where its loop runs, what it asks and who must
    answer. `name` is its loop's file in the client pod (c0, c1, ...)."""

    test: str
    name: str
    client: Source
    target: Target
    answer: str  # the server pod's name: any other answer is a WRONG_BACKEND
    by_name: str = ""  # the name each try dials and resolves ("": the target's address)

    @property
    def host(self) -> str:
        """What a try dials: the name, else the address."""
        return self.by_name or self.target.ip

    def to_json(self) -> dict:
        return {"test": self.test, "name": self.name, "client": vars(self.client),
                "target": vars(self.target), "answer": self.answer, "by_name": self.by_name}

    @staticmethod
    def from_json(data: dict) -> WatchCell:
        return WatchCell(data["test"], data["name"], Source(**data["client"]),
                         Target(**data["target"]), data["answer"], data.get("by_name", ""))


def plan(inventory: Inventory, placements: dict[str, Placement]) -> list[WatchCell]:
    """Every watched cell this run can probe: a placement with a node for each role,
    workloads that were created and became Ready (else its test skips or errors as
    usual, without a loop)."""
    cells: list[WatchCell] = []
    for name, target_of in TARGETS.items():
        hop: Hop = HOPS[name]
        if any(g in inventory.skips or g in inventory.errors for g in hop.groups):
            continue
        for placement_id in hop.placements:
            placement = placements[placement_id]
            if placement.missing(hop.roles):
                continue
            client = inventory.pod_on("client", placement.client.name)
            server = inventory.pod_on("server", placement.server.name)
            for protocol in hop.protocols:
                cells.append(WatchCell(
                    hop.test_id(placement_id, None, protocol), f"c{len(cells)}",
                    client.source(), target_of(inventory, placement, protocol),
                    server.name))
    by_name: Hop = HOPS[BY_NAME]
    # As the test walks it: the default placement (the server on the client's node),
    # its Service's ClusterIP, dialled by the Service's short name.
    same_node = placements["same-node"]
    if not any(g in inventory.skips or g in inventory.errors for g in by_name.groups) and \
            not same_node.missing(("client", "server")):
        client = inventory.pod_on("client", same_node.client.name)
        server = inventory.pod_on("server", same_node.server.name)
        service = inventory.server_service(same_node.server)
        for protocol in BY_NAME_PROTOCOLS:
            cells.append(WatchCell(by_name.test_id(None, None, protocol), f"c{len(cells)}",
                                   client.source(), service.target(protocol), server.name,
                                   by_name=service.name))
    return cells
