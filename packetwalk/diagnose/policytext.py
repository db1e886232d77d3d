"""The diagnosis's words for what policyeval decided: which policy denies a flow, and why. Pure.

The reader should be able to fix the policy from the line alone, so a denying
policy is named with the pod it selects (and its node), the traffic it refused,
and the rules it has instead ("its only rule allows namespace kube-system").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packetwalk.diagnose.policyeval import INGRESS, Endpoint, Flow, Side, rules

NAMESPACE_NAME = "kubernetes.io/metadata.name"  # the label every namespace carries
CLEAR = "no policy on the path denies this traffic"


def selector_text(selector: Mapping) -> str:
    """'k8s-app=kube-dns,tier in (a, b)'; '' for the empty selector (everything)."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        values = ", ".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                      "Exists": e["key"]}.get(e["operator"], f"!{e['key']}"))
    return ",".join(parts)


def _namespaces_text(selector: Mapping) -> str:
    match = selector.get("matchLabels") or {}
    if set(match) == {NAMESPACE_NAME} and not selector.get("matchExpressions"):
        return f"namespace {match[NAMESPACE_NAME]}"
    return f"namespaces {selector_text(selector)}" if selector_text(selector) else "every namespace"


def peer_text(peer: Mapping, policy_namespace: str) -> str:
    block = peer.get("ipBlock")
    if block:
        excepted = ", ".join(block.get("except") or [])
        return block["cidr"] + (f" except {excepted}" if excepted else "")
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    where = (_namespaces_text(namespaces) if namespaces is not None
             else f"namespace {policy_namespace}")
    if pods is None:
        return where
    chosen = selector_text(pods)
    return f"pods {chosen} in {where}" if chosen else f"every pod in {where}"


def ports_text(ports: list[Mapping]) -> str:
    out = []
    for port in ports:
        protocol = (port.get("protocol") or "TCP").upper()
        number = port.get("port")
        if number is None:
            out.append(f"every {protocol} port")
            continue
        end = port.get("endPort")
        out.append(f"{number}-{end}/{protocol}" if end is not None else f"{number}/{protocol}")
    if len(out) == 1:
        return out[0] if out[0].startswith("every") else f"port {out[0]}"
    return "ports " + ", ".join(out)


def rule_text(rule: Mapping, direction: str, policy_namespace: str) -> str:
    peers = rule.get("from" if direction == INGRESS else "to") or []
    who = " or ".join(peer_text(p, policy_namespace) for p in peers) if peers else "any peer"
    ports = rule.get("ports") or []
    return who + (f" on {ports_text(ports)}" if ports else "")


def why(policy: Mapping, direction: str) -> str:
    """What a policy allows instead of the refused flow."""
    namespace = (policy.get("metadata") or {}).get("namespace", "")
    found = rules(policy, direction)
    if not found:
        return f"it has no {direction} rule, so it admits nothing"
    texts = [rule_text(r, direction, namespace) for r in found]
    if len(texts) == 1:
        return f"its only rule allows {texts[0]}"
    return f"its {len(texts)} rules allow {'; '.join(texts)}"


def _end(end: Endpoint) -> str:
    if end.is_pod:
        return f"{end.name} in namespace {end.namespace}"
    return end.ip or end.name


def flow_text(flow: Flow, direction: str) -> str:
    """The flow as seen from the side judging it: where it comes from, or goes to."""
    other = f"from {_end(flow.src)}" if direction == INGRESS else f"to {_end(flow.dst)}"
    named = flow.named_port
    port = f"{flow.port}/{flow.protocol.upper()}" + (f" ({named})" if named else "")
    return f"{other}, port {port}"


def _pod(side: Side) -> str:
    return side.pod.name + (f" on {side.pod.node}" if side.pod.node else "")


def side_line(flow: Flow, side: Side) -> str | None:
    """The side's sentence; None when no policy isolates it."""
    if not side.isolated:
        return None
    direction, traffic = side.direction, flow_text(flow, side.direction)
    admitting = [j.name for j in side.judgements if j.admits]
    if admitting:
        verb = "selects" if len(admitting) == 1 else "select"
        return (f"{', '.join(admitting)} ({direction}) {verb} {_pod(side)} and admits traffic "
                f"{traffic}")
    if len(side.judgements) == 1:
        only = side.judgements[0]
        return (f"{only.name} ({direction}) selects {_pod(side)} and admits no traffic {traffic}: "
                f"{why(only.policy, direction)}")
    names = ", ".join(j.name for j in side.judgements)
    reasons = "; ".join(f"{j.name}: {why(j.policy, direction)}" for j in side.judgements)
    return f"none of {names} ({direction}) selecting {_pod(side)} admits traffic {traffic}: {reasons}"


@dataclass(frozen=True)
class PathPolicies:
    """The policy part of a diagnosis: its lines, whether any policy selects a pod on
    the path, and which policies deny (namespace/name)."""

    lines: tuple[str, ...]
    selected: bool
    denying: tuple[str, ...]
    # Policies that admit a pod on the path only by an ipBlock holding its IP.
    by_ip_block: tuple[str, ...] = ()


def on_the_path(judged: list[tuple[Flow, tuple[Side, Side]]],
                pods: list[str] | None = None) -> PathPolicies:
    """Every flow's sides, worded: the denials, what admits, and the plain all-clear.
    `pods`: the path's pods to name even when no flow reached them."""
    lines: list[str] = []
    denying: list[str] = []
    by_ip_block: list[str] = []
    pods = list(pods or [])
    for flow, sides in judged:
        for side in sides:
            if side.pod.is_pod and side.pod.name not in pods:
                pods.append(side.pod.name)
            line = side_line(flow, side)
            if line is not None and line not in lines:
                lines.append(line)
            if not side.admitted:
                denying += [j.name for j in side.judgements if j.name not in denying]
            by_ip_block += [n for n in side.admitted_by_ip_block if n not in by_ip_block]
    selected = bool(lines)
    if not selected:
        return PathPolicies((f"none select {', '.join(pods) or 'these pods'}: {CLEAR}",),
                            False, ())
    if not denying:
        lines.append(CLEAR)
    return PathPolicies(tuple(lines), True, tuple(denying), tuple(by_ip_block))


def also_present(counts: list[tuple[str, int]], unreadable: list[str]) -> str | None:
    """The policy kinds counted but not evaluated, and those that could not be read."""
    parts = []
    if counts:
        parts.append("also present, not evaluated: "
                     + ", ".join(f"{n} {kind}" for kind, n in counts))
    if unreadable:
        parts.append(f"could not read {', '.join(unreadable)}")
    return "; ".join(parts) or None
