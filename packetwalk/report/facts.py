"""Cluster facts for the report: version, nodes, kube-proxy mode, CNI, DNS Service IP.

Every fact is best effort and says where it came from; one that cannot be
told is "unknown", never a failed run. kube-proxy mode, in order: the
kubeadm-style kube-proxy ConfigMap, the --proxy-mode flag of kube-proxy
pods, and on the lab the nodes' own rules (kube-proxy runs there as a
process, with neither). The CNI: known DaemonSet names in kube-system, and
on the lab the plugin types of a node's conflist.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, VersionApi
from kubernetes.client.rest import ApiException

from packetwalk import aboutlab
from packetwalk.cluster import API_TIMEOUT
from packetwalk.placement import internal_ip

UNKNOWN = "unknown"
KNOWN_CNIS = ("cilium", "calico", "canal", "flannel", "weave", "antrea", "kube-ovn", "ovn",
              "kindnet", "kube-router", "aws-node", "azure-cni", "multus")


def proxy_mode_from_config(text: str) -> str | None:
    """KubeProxyConfiguration YAML -> mode; an empty mode is iptables on Linux."""
    found = re.search(r"^mode:\s*\"?([A-Za-z]*)\"?\s*$", text, re.MULTILINE)
    if found is None:
        return None
    return found.group(1) or "iptables (the default)"


def proxy_mode_from_args(args: list[str]) -> str | None:
    for index, arg in enumerate(args):
        if arg.startswith("--proxy-mode="):
            return arg.split("=", 1)[1]
        if arg == "--proxy-mode" and index + 1 < len(args):
            return args[index + 1]
    return None


def proxy_mode_from_rules(iptables_nat: str, nft_tables: str) -> str | None:
    """From a node's `iptables-save -t nat` and `nft list tables` output."""
    if "table ip kube-proxy" in nft_tables:
        return "nftables"
    if "-A KUBE-SERVICES" in iptables_nat:
        return "iptables"
    return None


def cni_from_names(names: list[str]) -> list[str]:
    return sorted({cni for name in names for cni in KNOWN_CNIS if name.startswith(cni)})


def cni_from_conflist(text: str) -> str | None:
    """'bridge + host-local + portmap' from a CNI .conflist."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    parts = []
    for plugin in data.get("plugins") or []:
        parts.append(plugin.get("type", "?"))
        ipam = (plugin.get("ipam") or {}).get("type")
        if ipam:
            parts.append(ipam)
    return " + ".join(parts) or None


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _lab_facts(node: str) -> tuple[str | None, str | None]:
    """(kube-proxy mode, CNI) read from a lab node's namespaces and files, as the lab tells them."""
    lab = aboutlab.read()
    where = lab.node(node) if lab else None
    if where is None:
        return None, None
    mode = proxy_mode_from_rules(_run(["ip", "netns", "exec", where.netns, "iptables-save", "-t",
                                       "nat"]),
                                 _run(["ip", "netns", "exec", where.netns, "nft", "list", "tables"]))
    cni = None
    for conflist in sorted(Path(where.cni_conf_dir).glob("*.conflist")):
        cni = cni_from_conflist(conflist.read_text())
    if mode:
        mode += f" (from node {node}'s rules)"
    return mode, (f"{cni} (lab conflist)" if cni else None)


def gather(api: ApiClient, dns_ip: str | None, lab: bool) -> dict[str, str]:
    """{fact: value} in display order."""
    core = CoreV1Api(api)
    facts: dict[str, str] = {}
    try:
        facts["Kubernetes"] = VersionApi(api).get_code(_request_timeout=API_TIMEOUT).git_version
    except (ApiException, OSError) as exc:
        facts["Kubernetes"] = f"{UNKNOWN} ({exc})"
    try:
        nodes = core.list_node(_request_timeout=API_TIMEOUT).items
    except (ApiException, OSError):
        nodes = []
    facts["Nodes"] = "; ".join(
        f"{n.metadata.name} ({internal_ip(api.sanitize_for_serialization(n)) or '?'}, "
        f"{n.status.node_info.kubelet_version}, {n.status.node_info.container_runtime_version})"
        for n in nodes) or UNKNOWN
    mode = cni = None
    try:
        maps = core.list_namespaced_config_map("kube-system", _request_timeout=API_TIMEOUT).items
        for item in maps:
            if item.metadata.name == "kube-proxy":
                mode = next(filter(None, map(proxy_mode_from_config,
                                             (item.data or {}).values())), None)
        pods = core.list_namespaced_pod("kube-system", _request_timeout=API_TIMEOUT).items
        for pod in pods:
            if mode is None and pod.metadata.name.startswith("kube-proxy"):
                container = pod.spec.containers[0]
                mode = proxy_mode_from_args([*(container.command or []),
                                             *(container.args or [])])
        daemonsets = AppsV1Api(api).list_namespaced_daemon_set(
            "kube-system", _request_timeout=API_TIMEOUT).items
        cni = ", ".join(cni_from_names([d.metadata.name for d in daemonsets])) or None
    except (ApiException, OSError):
        pass
    if lab and nodes and (mode is None or cni is None):
        lab_mode, lab_cni = _lab_facts(nodes[-1].metadata.name)
        mode, cni = mode or lab_mode, cni or lab_cni
    facts["kube-proxy mode"] = mode or UNKNOWN
    facts["CNI"] = cni or UNKNOWN
    facts["DNS Service IP"] = dns_ip or UNKNOWN
    return facts
