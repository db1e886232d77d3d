"""The NetworkPolicies that select a failing probe's client or server, and
what a wrong policy cell means.

A policy applies to a pod when its namespace holds the policy and its
podSelector matches the pod's labels; `selects` decides that (pure), and so
does `conclude_cell`.
"""

from __future__ import annotations

from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT
from packetwalk.inventory import Pod


def _expression_holds(expression: dict, labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    return key not in labels  # DoesNotExist


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (as a dict) against a pod's labels; {} selects every pod."""
    selector = selector or {}
    match = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    return all(_expression_holds(e, labels) for e in selector.get("matchExpressions") or [])


def selecting(api: ApiClient, pods: list[Pod]) -> list[str]:
    """'<namespace>/<policy> (Ingress) selects <pod>' for every match, or why it is unknown."""
    core, net = CoreV1Api(api), NetworkingV1Api(api)
    found = []
    try:
        for namespace in sorted({p.namespace for p in pods}):
            policies = net.list_namespaced_network_policy(
                namespace, _request_timeout=API_TIMEOUT).items
            if not policies:
                continue
            for pod in (p for p in pods if p.namespace == namespace):
                labels = core.read_namespaced_pod(
                    pod.name, namespace, _request_timeout=API_TIMEOUT).metadata.labels or {}
                for policy in policies:
                    spec = api.sanitize_for_serialization(policy.spec)
                    if selects(spec.get("podSelector"), labels):
                        types = "/".join(spec.get("policyTypes") or ["Ingress"])
                        found.append(f"{namespace}/{policy.metadata.name} ({types}) "
                                     f"selects {pod.name}")
    except ApiException as exc:
        return [f"cannot list NetworkPolicies: {exc.status} {exc.reason}"]
    return found or [f"none select {' or '.join(p.name for p in pods)}"]


def conclude_cell(expected: str, observed: str, policies: list[str], server_node: str) -> str:
    """One sentence for a policy cell that came out wrong. `expected`: "open" or
    "blocked"; `observed`: the probe's class; `policies`: what `selecting` found."""
    selected = any(" selects " in line for line in policies)
    if expected != "open" and observed == "OK":
        if selected:
            return ("policies select these pods, yet the traffic passed: NetworkPolicy is not "
                    f"enforced (is the policy enforcer running on {server_node}?)")
        return ("no NetworkPolicy selects these pods: the policy never reached the API, "
                "or its podSelector misses them")
    if selected:
        return (f"traffic the policies allow is {observed}: their rules (peers, ports) or the "
                "enforcer's rule order block it")
    return f"{observed} although no NetworkPolicy selects these pods: not a policy problem, look below it"
