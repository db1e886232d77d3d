"""`lab status`'s network lines, detected from the running cluster as the report
detects them on any cluster (packetwalk/netfacts.py), not from the lab's state:
kube-system's workloads, the nodes' annotations, and what each node shows to
a process in its network namespace (where a hostNetwork pod would look).
"""

from __future__ import annotations

import json
import subprocess

from packetwalk import netfacts

from . import paths
from . import topology as t
from .errors import LabError
from .processes import in_netns


def _json(kubectl, *args: str) -> list[dict]:
    return json.loads(kubectl(*args, "-o", "json", timeout=10))["items"]


def _node_probe(node: str) -> str:
    r = subprocess.run(in_netns(node) + ["sh", "-c", netfacts.NODE_SCRIPT], capture_output=True,
                       text=True, timeout=30, check=False)
    return r.stdout


def _conflist_types(node: str) -> str | None:
    for f in sorted(paths.cni_conf_dir(node).glob("*.conflist")):
        return netfacts.conflist_types(f.read_text())
    return None


def lines(kubectl, lab_nodes: list[t.Node]) -> list[str]:
    """["CNI: ...", "kube-proxy mode: ...", "pod MTU: ..."] as the cluster tells them."""
    try:
        workloads = [(i["metadata"]["name"], [c["image"] for c in i["spec"]["template"]["spec"]["containers"]])
                     for i in _json(kubectl, "-n", "kube-system", "get", "daemonsets")]
        workloads += [(i["metadata"]["name"], [c["image"] for c in i["spec"]["containers"]])
                      for i in _json(kubectl, "-n", "kube-system", "get", "pods")]
        annotations = {i["metadata"]["name"]: i["metadata"].get("annotations", {})
                       for i in _json(kubectl, "get", "nodes")}
    except (LabError, subprocess.SubprocessError, ValueError, KeyError) as e:
        return [f"network: API server not answering ({e})"]
    probes = {n.name: netfacts.parse_node_probe(_node_probe(n.name)) for n in lab_nodes}
    # A worker's view names the CNI: the control plane's may lack what only pods' nodes get.
    first = next((n.name for n in lab_nodes if not n.control_plane), lab_nodes[0].name)
    agents = netfacts.agents_from_workloads(workloads)
    source = netfacts.source_note(bool(agents))
    agents = agents or netfacts.agents_from_node(probes[first], annotations.get(first, {}))
    cni = netfacts.describe_cni(agents, _conflist_types(first))
    mtus = {name: netfacts.pod_mtu_from_node(p.links) for name, p in probes.items()}
    mtu = next((f"{m} (the pods' veths on {name})" for name, m in mtus.items() if m),
               f"{netfacts.UNKNOWN} (no pod runs on {', '.join(mtus)})")
    named = any(not a.policy_only for a in agents)
    return [f"CNI: {cni}" + (f"; {source}" if named else ""),
            "kube-proxy mode: " + netfacts.proxy_mode_line({n: p.proxy_mode for n, p in probes.items()}, agents),
            f"pod MTU: {mtu}"]
