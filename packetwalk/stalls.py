"""When the cluster, not the network, keeps every run pod from starting (pure).

A run's bring-up waits on the control plane more than on the network: the
controller-manager gives each new namespace its `default` ServiceAccount (no pod
can be created before), the scheduler gives each pod its node, the kubelet asks
the CNI for the pod's sandbox, and the EndpointSlice controller lists the ready
pods behind each Service. When one of those never happens for any of the run's
pods, every test would ERROR with the same line; instead the run stops at session
start with one line naming what was awaited, for how long, the evidence, and the
likely component:

    the scheduling of the run's pods did not happen within 60s: ...; likely kube-scheduler

Only a stall of the whole run is named here, and one of a node's CNI: when every
pod planned on some nodes fails to get its sandbox for a network reason while the
rest started (a CNI agent gone from those nodes), the line names those nodes' CNI.
The run's groups span the nodes, so otherwise every test would error alike (cilium
lab, cilium-agent-down: 91 ids, after 120 s). When the pods are stuck for different
or unknown reasons, this says nothing (None) and the groups of the pods that never
became Ready error with their own reason, as before. An image no
node can pull is bad input and said elsewhere (workloads.check_image_pulled).

Plain facts in (PodFacts from pod dicts and event lines, Service counts), a Stall
or None out: no Kubernetes client here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# The admission plugin's refusal while a namespace has no ServiceAccount yet:
# 'pods "x" is forbidden: error looking up service account ns/default:
# serviceaccount "default" not found', or 'service account ns/default was not
# found, retry after the service account is created'.
ACCOUNT_REFUSALS = ("error looking up service account", "serviceaccount \"default\" not found",
                    "retry after the service account is created")
SANDBOX_REASONS = frozenset({"FailedCreatePodSandBox", "NetworkNotReady"})
NETWORK_WORDS = ("network", "cni")
EVIDENCE = 200  # characters of a message quoted as evidence

ACCOUNT, UNSCHEDULED, SANDBOX = "account", "unscheduled", "sandbox"


@dataclass(frozen=True)
class PodFacts:
    """What bring-up saw of one planned pod."""

    name: str
    namespace: str
    node: str  # the node it is pinned to
    host_network: bool = False
    refused: str = ""  # the API's message, when creating it was refused
    ready: bool = False
    phase: str = ""  # "" when the pod was never seen
    node_name: str = ""  # spec.nodeName: set once scheduled
    # PodScheduled as (status, reason); None when the pod has no such condition.
    scheduled: tuple[str, str] | None = None
    events: tuple[tuple[str, str], ...] = ()  # (reason, message), oldest first


@dataclass(frozen=True)
class Stall:
    """What was awaited, for how long, what was seen, and who likely failed."""

    awaited: str
    waited: float
    evidence: str
    likely: str

    def __str__(self) -> str:
        return (f"{self.awaited} did not happen within {self.waited:.0f}s: {self.evidence}; "
                f"likely {self.likely}")


def account_missing(message: str) -> bool:
    """A pod refused because its namespace has no `default` ServiceAccount yet."""
    return any(words in message for words in ACCOUNT_REFUSALS)


def is_ready(pod: dict) -> bool:
    """A pod dict (as the API returns it) that is Ready and has its IP."""
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or [])


def pinned_node(planned: dict) -> str:
    """The node a planned pod is pinned to (its required node affinity)."""
    return planned["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchFields"][0]["values"][0]


def facts_of(planned: dict, seen: dict | None, events: list[tuple[str, str]] = (),
             refused: str = "") -> PodFacts:
    """The facts of a planned pod from the pod the API listed (None: not seen)."""
    meta = planned["metadata"]
    facts = PodFacts(meta["name"], meta["namespace"], pinned_node(planned),
                     host_network=bool(planned["spec"].get("hostNetwork")), refused=refused,
                     events=tuple(events))
    if seen is None:
        return facts
    status = seen.get("status") or {}
    condition = next((c for c in status.get("conditions") or []
                      if c.get("type") == "PodScheduled"), None)
    return replace(facts, ready=is_ready(seen), phase=status.get("phase", ""),
                   node_name=(seen.get("spec") or {}).get("nodeName") or "",
                   scheduled=None if condition is None else
                   (condition.get("status", ""), condition.get("reason") or ""))


def _sandbox_event(pod: PodFacts) -> tuple[str, str] | None:
    return next(((r, m) for r, m in reversed(pod.events) if r in SANDBOX_REASONS), None)


def cause(pod: PodFacts) -> str | None:
    """Why this pod did not start, when it is a stall this module names; else None."""
    if pod.ready:
        return None
    if pod.refused:
        return ACCOUNT if account_missing(pod.refused) else None
    if not pod.phase:
        return None
    if not pod.node_name:
        # The scheduler says why it cannot place a pod (reason Unschedulable, a
        # FailedScheduling event): then it runs, and the pod's own error says why.
        verdict = pod.scheduled is not None and (pod.scheduled[0] == "True" or pod.scheduled[1])
        heard = any(reason == "FailedScheduling" for reason, _ in pod.events)
        return None if verdict or heard else UNSCHEDULED
    if pod.phase == "Pending" and _sandbox_event(pod) is not None:
        return SANDBOX
    return None


def _quote(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= EVIDENCE else message[:EVIDENCE - 3] + "..."


def pods_stall(pods: list[PodFacts], waited: float) -> Stall | None:
    """The stall that keeps every one of the run's pods from starting, or None.

    Judged on the pods on the pod network (hostNetwork pods need no sandbox from
    the CNI; they count only when there is nothing else). None when any of them is
    Ready, when any is stuck for a reason not named here, or when they are stuck
    for different reasons (mixed: each group's error says its own).
    """
    judged = [p for p in pods if not p.host_network] or list(pods)
    if not judged:
        return None
    causes = {cause(p) for p in judged}
    if len(causes) != 1 or None in causes:
        return _nodes_stall(judged, waited)
    kind = causes.pop()
    if kind == ACCOUNT:
        first = judged[0]
        return Stall(f"the creation of ServiceAccount {first.namespace}/default", waited,
                     f"creating pod {first.namespace}/{first.name} was refused: "
                     f"{_quote(first.refused)}",
                     "kube-controller-manager (its serviceaccount controller)")
    if kind == UNSCHEDULED:
        return Stall("the scheduling of the run's pods", waited,
                     f"none of the {len(judged)} pods has a node, and no scheduler said why "
                     f"(no PodScheduled reason, no FailedScheduling event)", "kube-scheduler")
    nodes = ", ".join(sorted({p.node_name for p in judged}))
    reason, message = next(e for p in judged if (e := _sandbox_event(p)) is not None)
    network = _blames_network(reason, message)
    return Stall("the start of the run's pod sandboxes", waited,
                 f"all {len(judged)} pods stay ContainerCreating on {nodes}: "
                 f"{reason}: {_quote(message)}",
                 f"the CNI on {nodes}" if network else f"the container runtime on {nodes}")


def _blames_network(reason: str, message: str) -> bool:
    """A sandbox event that blames the network (the CNI), not the runtime."""
    return reason == "NetworkNotReady" or any(word in message.lower() for word in NETWORK_WORDS)


def _network_event(pod: PodFacts) -> tuple[str, str] | None:
    """The pod's sandbox event when it blames the network, else None."""
    event = _sandbox_event(pod) if cause(pod) == SANDBOX else None
    return event if event is not None and _blames_network(*event) else None


def _nodes_stall(judged: list[PodFacts], waited: float) -> Stall | None:
    """Some nodes' CNI: every pod planned on them stuck without a network sandbox,
    every other pod Ready. None when any other pod is still on its way or stuck for
    another reason (then it is not those nodes alone)."""
    stuck = {p.name: e for p in judged if (e := _network_event(p)) is not None}
    nodes = sorted({p.node for p in judged if p.name in stuck})
    if not stuck or any(p.name not in stuck and (not p.ready or p.node in nodes) for p in judged):
        return None
    there = ", ".join(nodes)
    reason, message = next(iter(stuck.values()))
    return Stall(f"the start of the run's pod sandboxes on {there}", waited,
                 f"all {len(stuck)} pods planned there stay ContainerCreating (the other "
                 f"{len(judged) - len(stuck)} are Ready): {reason}: {_quote(message)}",
                 f"the CNI on {there}")


def endpoints_stall(services: dict[str, tuple[int, int]], slices: int,
                    waited: float) -> Stall | None:
    """`services`: {name: (Ready backends, of those listed in its EndpointSlices)};
    `slices`: how many EndpointSlices the run's namespace has. A stall when Services
    have Ready backends and none of them lists a single one; some listed is None
    (those Services' tests fail and say so)."""
    backed = {name: counts for name, counts in services.items() if counts[0]}
    if not backed or any(listed for _, listed in backed.values()):
        return None
    return Stall("the filling of the run's EndpointSlices", waited,
                 f"none of the {len(backed)} Services with Ready pods lists any of them "
                 f"({slices} EndpointSlices in the namespace)",
                 "the EndpointSlice controller (kube-controller-manager)")
