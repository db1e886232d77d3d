"""The pod network: one module per CNI behind one small interface.

A CNI is a module here exposing `CNI`, an instance of a Cni subclass; the lab
finds it by name (dashes become underscores), so adding a CNI adds a file.
On `up` the lab calls, in this order: configure_node for each node once the
controller-manager has given it a pod CIDR, after_cidrs once, then start for
each node. The chosen CNI's name is kept in the lab's state and told to the
engine in the lab-info file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import LabError

if TYPE_CHECKING:
    from ..state import State
    from ..topology import Node

DEFAULT_CNI = "bridge"


@dataclass(frozen=True)
class CniFault:
    """A fault only one CNI has (bgp-down: kube-router's BGP). The lab lists and
    injects it beside faults.FAULTS while that CNI runs. inject and heal get the
    state, the nodes, their pod CIDRs and the node the fault is on."""

    name: str
    symptom: str
    per_node: bool
    inject: Callable[[State, list[Node], dict[str, str], Node], None]
    heal: Callable[[State, list[Node], dict[str, str], Node], None]


class Cni:
    name = ""
    builds: tuple[str, ...] = ()  # names in build.COMPONENTS it needs beyond the cluster's own
    # The lab faults that break what this CNI does the way the self-check expects.
    faults_supported: frozenset[str] = frozenset()
    # A fault whose symptom on this CNI differs from faults.FAULTS' wording: name -> symptom.
    fault_symptoms: ClassVar[dict[str, str]] = {}
    # Faults of this CNI alone; their names are in faults_supported too.
    own_faults: ClassVar[tuple[CniFault, ...]] = ()
    # The agent versions `lab upgrade --cni NAME@VERSION` offers (none: no upgrade).
    upgrades: tuple[str, ...] = ()
    # The `lab up --ip-family` values it is built for. A CNI with "dual" here takes
    # configure_node(node, pod_cidr, pod_cidr6) and after_cidrs(nodes, cidrs, cidrs6)
    # in a dual-stack lab (the IPv6 pod CIDRs); an IPv4 lab calls them as before. With
    # "ipv6", an IPv6-only lab calls them as an IPv4 lab does, with IPv6 pod CIDRs.
    ip_families: tuple[str, ...] = ("ipv4",)
    # True: the CNI's agent translates Services itself (cilium's kube-proxy
    # replacement) and the lab starts no kube-proxy. The core's list of such CNIs is
    # netfacts.REPLACES_KUBE_PROXY; test_lab_cilium keeps the two in line.
    replaces_kube_proxy = False
    # Seconds a NetworkPolicy change can take this CNI to enforce on the lab, where that
    # is past the suite's default --policy-timeout: the matrix runs it with this many
    # (None: the default does). Measured, with where, beside each value.
    policy_timeout: float | None = None
    # Where containerd also looks for CNI plugins, beyond Debian's (a CNI whose
    # plugin the lab builds: cilium-cni in the lab's bin directory).
    cni_bin_dirs: tuple[str, ...] = ()
    # Host files the agent runs at run time, each with the Debian package that has it
    # (cilium compiles its datapath with clang): `lab up` checks them before it touches
    # anything, so a missing one is one line, not an agent that dies on each start.
    host_needs: tuple[tuple[str, str], ...] = ()

    def configure_node(self, node: Node, pod_cidr: str) -> None:
        """The node's CNI configuration, from the pod CIDR the controller-manager gave it."""
        raise NotImplementedError

    def after_cidrs(self, nodes: list[Node], cidrs: dict[str, str]) -> None:
        """What joins the nodes' pod networks once every node has its CIDR (and again
        when a fault healed it)."""
        raise NotImplementedError

    def start(self, state: State, node: Node) -> None:
        """The CNI's agent processes on the node (none for a CNI that has none)."""

    def stop(self, state: State, node: Node) -> None:
        """Stop the agents and remove what they programmed. policy-enforcer-down does
        this, so a CNI whose agents also route leaves that fault out of faults_supported."""

    def cut_off(self, nodes: list[Node], cidrs: dict[str, str], node: Node,
                cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        """cross-node-route: the other nodes lose their way to node's pods.
        cross-node-route-ipv6 (a CNI listing it, built for dual-stack): a dual-stack
        lab's IPv6 pod CIDRs in cidrs6 and family "ipv6": only that family's way is
        cut. A CNI without it is never called with them."""
        raise NotImplementedError

    def reconnect(self, nodes: list[Node], cidrs: dict[str, str], node: Node,
                  cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        """Undo cut_off (the same arguments)."""
        raise NotImplementedError

    def set_hairpin(self, nodes: list[Node], cidrs: dict[str, str], on: bool) -> None:
        """hairpin-off: pods can (no longer) reach themselves through their Service."""
        raise NotImplementedError

    def versions(self) -> str:
        """What `lab status` lists besides the cluster's own components ("" for nothing)."""
        return ""

    def upgrade(self, state: State, nodes: list[Node], version: str, log: Callable[[str], None],
                vxlan_port: int | None = None, all_nodes: bool = True) -> None:
        """Replace the agent on `nodes`, one by one, as a DaemonSet rollout does, keeping
        the pods. `all_nodes` False: the others keep what they run."""
        raise LabError(f"{self.name} has no upgrade in the lab")


def names() -> list[str]:
    # A module named _x holds what several CNIs share; it is no CNI.
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def cni_named(name: str) -> Cni:
    if name not in names():
        raise LabError(f"unknown CNI {name!r}; known: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}").CNI
