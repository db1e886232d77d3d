"""From the narrowing results to one sentence, and the run's diagnoses summed up. Pure.

These rules refine verdict.py's layer sentence for one failure: the verdict
names the layer a failing test belongs to; the conclusion says what the
narrowing probes showed below it ("ClusterIP fails, pod IPs answer").
"""

from __future__ import annotations

from collections import Counter

from packetwalk.diagnose.narrowing import (
    CLUSTER_IP,
    EXTERNAL,
    FROM_NODE,
    NAME,
    NODE_PORT,
    OTHER_PROTOCOL,
    POD_IP,
    SAME_NODE_CLIENT,
    SAME_NODE_TARGET,
    SMALL,
    Dialed,
)
from packetwalk.records import DiagnosisRecord


def _all(results: list[tuple[str, str, bool]], kind: str, change: str = "") -> bool | None:
    """True if every step of (kind, change) answered, False if any failed, None if none ran."""
    oks = [ok for k, c, ok in results if k == kind and c == change]
    return all(oks) if oks else None


def through(target: Dialed) -> str:
    """The node the failed probe went through: the node whose NodePort it dialed, or the
    target pod's node; '' for a Service or a name (its backends are the narrowing's)."""
    if target.node is not None:
        return target.node.name
    return target.pod.node if target.pod is not None else ""


def conclude(failed: str, results: list[tuple[str, str, bool]], where: str,
             protocol: str = "", target_node: str = "") -> str:
    """`failed`: what the failed probe dialed (narrowing.NAME, CLUSTER_IP, ...).
    `results`: (kind, change, answered) of each narrowing step. `where`: the client's node.
    `protocol`: the failed probe's. `target_node`: the node it went through (`through`):
    the NodePort's node or the target pod's, '' if unknown.
    """
    # The most specific findings first: they hold whatever the layer below says.
    small = _all(results, failed, SMALL)
    if small:
        return ("a small request to the same target answers, the near-MTU payload does not: "
                "path MTU (interface MTUs vs the path, ICMP frag-needed)")
    if small is False:
        return "even a small request to the same target fails: not an MTU problem"
    pods = _all(results, POD_IP)
    cluster_ip = _all(results, CLUSTER_IP)
    near = _all(results, POD_IP, SAME_NODE_CLIENT)
    local = _all(results, POD_IP, SAME_NODE_TARGET)
    # The other protocol matters only when no lower layer answered over this one:
    # "ClusterIP fails, pod IPs answer" says more about a UDP-only Service fault.
    # Pod IPs over the same protocol, from a pod: the other-protocol and from-node steps
    # dial pod IPs too, but they answer a different question.
    some_pod = any(ok for k, c, ok in results
                   if k == POD_IP and c in ("", SAME_NODE_CLIENT, SAME_NODE_TARGET))
    if _all(results, failed, OTHER_PROTOCOL) and protocol and not (some_pod or cluster_ip):
        other = "TCP" if protocol == "udp" else "UDP"
        return (f"{protocol.upper()} fails, {other} to the same target answers: something drops "
                f"{protocol.upper()} only (a firewall rule, a policy port, conntrack)")
    from_node = _all(results, failed, FROM_NODE)
    if failed == NAME:
        if cluster_ip:
            return "name fails, ClusterIP answers: cluster DNS is at fault"
        if pods:
            return ("name fails, pod IPs answer: cluster DNS is at fault" if cluster_ip is None
                    else f"name and ClusterIP fail, pod IPs answer: Service translation on {where}")
        if pods is False:
            return "name, ClusterIP and pod IP fail: below the Service layer, look at the pod network"
    if failed == NODE_PORT:
        # The NodePort is translated on the node dialed, the ClusterIP on the client's.
        rules = f"NodePort rules of {target_node}" if target_node else "NodePort rules"
        if cluster_ip:
            return f"NodePort fails, ClusterIP answers: {rules} or a firewall in front of it"
        if pods:
            nodes = (f"{where} (the ClusterIP) and {target_node} (the NodePort)"
                     if target_node and target_node != where else where)
            return f"NodePort and ClusterIP fail, pod IPs answer: Service translation on {nodes}"
        if pods is False:
            return "NodePort, ClusterIP and pod IPs fail: below the Service layer, look at the pod network"
    if failed == CLUSTER_IP:
        if pods:
            node = ("; the node fails too" if from_node is False
                    else "; the node answers: the pod's own path" if from_node else "")
            return f"ClusterIP fails, pod IPs answer: Service translation on {where}{node}"
        if pods is False:
            answering = [ok for k, c, ok in results if k == POD_IP and c == ""]
            if any(answering):
                return "ClusterIP fails, some pod IPs fail too: a backend is unreachable"
            return "ClusterIP fails and pod IPs fail too: below the Service layer"
    if failed == EXTERNAL:
        if from_node:
            return (f"from the pod it fails, from its node {where} it works: the pod's way "
                    "out (masquerade/SNAT, an egress policy)")
        if from_node is False:
            return (f"the node {where} cannot reach it either: the route out of the cluster, "
                    "a firewall, or the host itself")
    if failed == POD_IP:
        if near and local:
            pair = f" ({where} -> {target_node})" if target_node and target_node != where else ""
            return f"cross-node fails, same-node answers: the path between the nodes{pair}"
        if near is False:
            return ("fails from the target's own node too: the target or its node"
                    + (f" ({target_node})" if target_node else ""))
        if local is False:
            return "the client's same-node target fails too: the client or its node"
        if from_node:
            return "the pod fails, its node answers: the pod's own path (veth, bridge, egress)"
        if from_node is False:
            return f"the pod and its node {where} both fail"
    return "the narrowing probes did not tell the layers apart"


def summarize(diagnoses: list[DiagnosisRecord]) -> list[str]:
    """One line per distinct conclusion (and capture case) with the tests that reached it."""
    counted = Counter((diagnosis.verdict, diagnosis.capture or "") for diagnosis in diagnoses)
    return [f"{count} x {verdict}" + (f" | capture: {capture}" if capture else "")
            for (verdict, capture), count in counted.most_common()]
