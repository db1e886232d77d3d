"""Whether the NetworkPolicies selecting a flow's pods admit it, by the API's rules. Pure.

Policies are the plain dicts `ApiClient.sanitize_for_serialization` makes of
them (camelCase keys: podSelector, policyTypes, from, ipBlock, endPort). The
semantics followed, from the NetworkPolicy API reference:
- a policy applies to the pods of its own namespace that its podSelector matches;
- policyTypes, when absent, is Ingress, plus Egress when the policy has egress rules;
- a pod is isolated in a direction only if some policy selecting it has that type,
  and then traffic passes only if one of those policies admits it (a union);
  a policy of that type without rules admits nothing;
- a rule admits a flow when one of its peers matches (no peers: any) and one of its
  ports matches (no ports: any);
- a peer is a podSelector (pods of the policy's namespace), a namespaceSelector
  (every pod of the matching namespaces), both (matching pods in matching
  namespaces), or an ipBlock (cidr minus its except list);
- a port has a protocol (default TCP), a number (with endPort, a range) or a name
  (resolved against the destination pod's container ports), or no port (every port).
Replies of an admitted connection pass on their own; only the flow's direction is judged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

INGRESS, EGRESS = "Ingress", "Egress"


def _expression_holds(expression: dict, labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    return key not in labels  # DoesNotExist


def selects(selector: dict | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (as a dict) against a pod's labels; {} selects every pod."""
    selector = selector or {}
    match = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    return all(_expression_holds(e, labels) for e in selector.get("matchExpressions") or [])


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow. `labels` None: not a pod (an outside host, a node), which
    only an ipBlock can match and which no policy isolates."""

    name: str
    namespace: str = ""
    ip: str = ""
    labels: Mapping[str, str] | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    node: str = ""
    # Container ports as the pod spec has them: {"name", "containerPort", "protocol"}.
    ports: tuple[Mapping, ...] = ()

    @property
    def is_pod(self) -> bool:
        return self.labels is not None


@dataclass(frozen=True)
class Flow:
    """Traffic as the destination pod sees it: after a Service's DNAT, so `port` is the
    pod's own port. `port_name`: when known; otherwise found in dst.ports."""

    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str = "TCP"
    port_name: str | None = None

    @property
    def named_port(self) -> str | None:
        if self.port_name is not None:
            return self.port_name
        return next((p.get("name") for p in self.dst.ports
                     if p.get("containerPort") == self.port
                     and (p.get("protocol") or "TCP") == self.protocol.upper()), None)


def policy_types(spec: Mapping) -> list[str]:
    """The directions a policy isolates, with the API server's defaulting."""
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return [INGRESS, EGRESS] if spec.get("egress") else [INGRESS]


def policy_id(policy: Mapping) -> str:
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def applies(policy: Mapping, pod: Endpoint, direction: str) -> bool:
    """Whether `policy` isolates `pod` in `direction`."""
    spec = policy.get("spec") or {}
    return (pod.is_pod and (policy.get("metadata") or {}).get("namespace") == pod.namespace
            and direction in policy_types(spec)
            and selects(spec.get("podSelector"), pod.labels or {}))


def _in_block(block: Mapping, ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
        if address not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(address in ipaddress.ip_network(e, strict=False)
                       for e in block.get("except") or [])
    except ValueError:  # no address known, or another family than the block's
        return False


def peer_matches(peer: Mapping, other: Endpoint, policy_namespace: str) -> bool:
    """Whether a rule's peer matches the far end of the flow."""
    if "ipBlock" in peer and peer["ipBlock"] is not None:
        return _in_block(peer["ipBlock"], other.ip)
    if not other.is_pod:
        return False
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is not None:
        if not selects(namespaces, other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False  # a podSelector alone means pods of the policy's own namespace
    return pods is None or selects(pods, other.labels or {})


def port_matches(port: Mapping, flow: Flow) -> bool:
    if (port.get("protocol") or "TCP").upper() != flow.protocol.upper():
        return False
    number = port.get("port")
    if number is None:
        return True
    if isinstance(number, str):
        if number.isdigit():
            number = int(number)
        else:
            return flow.named_port == number
    end = port.get("endPort")
    return number <= flow.port <= end if end is not None else flow.port == number


def rule_admits(rule: Mapping, flow: Flow, direction: str, policy_namespace: str) -> bool:
    peers = rule.get("from" if direction == INGRESS else "to") or []
    other = flow.src if direction == INGRESS else flow.dst
    if peers and not any(peer_matches(p, other, policy_namespace) for p in peers):
        return False
    ports = rule.get("ports") or []
    return not ports or any(port_matches(p, flow) for p in ports)


def rules(policy: Mapping, direction: str) -> list[Mapping]:
    return list((policy.get("spec") or {}).get("ingress" if direction == INGRESS else "egress")
                or [])


def admits(policy: Mapping, flow: Flow, direction: str) -> bool:
    """Whether one policy's rules of `direction` admit the flow (no rules: nothing)."""
    namespace = (policy.get("metadata") or {}).get("namespace", "")
    return any(rule_admits(r, flow, direction, namespace) for r in rules(policy, direction))


def by_ip_block_only(policy: Mapping, flow: Flow, direction: str) -> bool:
    """Whether the policy admits the flow, from or to a pod, only through ipBlock peers:
    every rule that admits it does so by an ipBlock holding the pod's IP, none by a
    selector or by naming no peer. The API means ipBlock for cluster-external
    addresses, and some enforcers never match a pod by it (Cilium: cilium/cilium#9209),
    so a diagnosis says so when such traffic is dropped."""
    namespace = (policy.get("metadata") or {}).get("namespace", "")
    other = flow.src if direction == INGRESS else flow.dst
    admitting = [r for r in rules(policy, direction) if rule_admits(r, flow, direction, namespace)]
    if not other.is_pod or not admitting:
        return False
    for rule in admitting:
        peers = rule.get("from" if direction == INGRESS else "to") or []
        matching = [p for p in peers if peer_matches(p, other, namespace)]
        if not matching or any(p.get("ipBlock") is None for p in matching):
            return False
    return True


@dataclass(frozen=True)
class Judgement:
    policy: Mapping
    admits: bool
    # It admits the flow only by an ipBlock holding a pod's IP (by_ip_block_only).
    by_ip_block: bool = False

    @property
    def name(self) -> str:
        return policy_id(self.policy)


@dataclass(frozen=True)
class Side:
    """One direction of a flow at one pod: the policies isolating it there and their say."""

    direction: str
    pod: Endpoint
    judgements: tuple[Judgement, ...]

    @property
    def isolated(self) -> bool:
        return bool(self.judgements)

    @property
    def admitted(self) -> bool:
        return not self.isolated or any(j.admits for j in self.judgements)

    @property
    def admitted_by_ip_block(self) -> tuple[str, ...]:
        """The policies admitting this side, when each of them admits it only by an
        ipBlock holding a pod's IP (else none: a selector admits it too)."""
        admitting = [j for j in self.judgements if j.admits]
        if not admitting or not all(j.by_ip_block for j in admitting):
            return ()
        return tuple(j.name for j in admitting)


def judge(flow: Flow, policies: list[Mapping]) -> tuple[Side, Side]:
    """The flow's Egress side (at its source) and Ingress side (at its destination);
    it passes when both are admitted."""
    def side(direction: str, pod: Endpoint) -> Side:
        return Side(direction, pod, tuple(Judgement(p, admits(p, flow, direction),
                                                    by_ip_block_only(p, flow, direction))
                                          for p in policies if applies(p, pod, direction)))
    return side(EGRESS, flow.src), side(INGRESS, flow.dst)
