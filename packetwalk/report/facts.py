"""Cluster facts for the report: version, nodes, kube-proxy mode, CNI, pod MTU, DNS Service IP.

Every fact is best effort and says where it came from; one that cannot be
told is "unknown", never a failed run. The network's facts are the cluster's
own (packetwalk/netfacts.py decides): the CNI agents' DaemonSets and pods in
kube-system, else what a node shows to the run's hostNetwork pod (the agents'
interfaces, routes, annotations and ports); kube-proxy's mode from its own
/proxyMode endpoint ("none" when it does not answer, no kube-proxy pod runs and
the CNI replaces it: netfacts.REPLACES_KUBE_PROXY), else the kubeadm-style
kube-proxy ConfigMap or the --proxy-mode flag of kube-proxy pods, and on the lab
last the nodes' rules;
the pod MTU from a client pod's eth0. On the lab, with no agent found, the
plugin types of a node's conflist are named beside "unknown".
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, VersionApi
from kubernetes.client.rest import ApiException

from packetwalk import aboutlab
from packetwalk.cluster import API_TIMEOUT
from packetwalk.inventory import Inventory
from packetwalk.netfacts import (
    NODE_SCRIPT,
    agents_from_node,
    agents_from_workloads,
    conflist_types,
    describe_cni,
    mtu_of_link,
    no_kube_proxy,
    parse_node_probe,
    pod_mtu_from_node,
    service_translator,
    source_note,
)
from packetwalk.placement import internal_ip
from packetwalk.podexec import PodExec
from packetwalk.probes import ProbeError, Prober

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


# The lab's `status` reads it too: it lives with the engine's other network facts.
cni_from_conflist = conflist_types


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _lab_facts(node: str) -> tuple[str | None, str | None]:
    """(kube-proxy mode, the CNI config's plugin types) read from a lab node's
    namespaces and files, where the lab tells them."""
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
    return mode, cni


class RunPods:
    """The run's own pods, asked what the cluster shows from inside: a client
    pod's eth0, and a hostNetwork pod's view of its node (netfacts.NODE_SCRIPT)."""

    def __init__(self, configuration, inventory: Inventory | None):
        self.prober = Prober(PodExec(configuration, shells=False))  # a few reads, once
        self.inventory = inventory

    def _shell(self, role: str, script: str) -> tuple[str, str] | None:
        """(node, output) from the first ready pod of `role`, or None."""
        for node in self.inventory.nodes if self.inventory else []:
            pod = self.inventory.ready_on(role, node.name)
            if pod is None:
                continue
            try:
                result = self.prober.run(pod.source(), ["sh", "-c", script], 15)
            except ProbeError:
                continue
            if result.rc == 0:
                return node.name, result.stdout
        return None

    def pod_link(self) -> tuple[str, str] | None:
        return self._shell("client", "ip link show eth0")

    def node_probe(self) -> tuple[str, str] | None:
        return self._shell("host", NODE_SCRIPT) or self._shell("debug", NODE_SCRIPT)


def _workloads(api: ApiClient) -> list[tuple[str, list[str]]]:
    """kube-system's DaemonSets and pods, each with its containers' images."""
    found = []
    for ds in AppsV1Api(api).list_namespaced_daemon_set("kube-system", _request_timeout=API_TIMEOUT).items:
        found.append((ds.metadata.name, [c.image for c in ds.spec.template.spec.containers]))
    for pod in CoreV1Api(api).list_namespaced_pod("kube-system", _request_timeout=API_TIMEOUT).items:
        found.append((pod.metadata.name, [c.image for c in pod.spec.containers]))
    return found


def network_facts(workloads: list[tuple[str, list[str]]], annotations: dict[str, str],
                  probe: tuple[str, str] | None, pod_link: tuple[str, str] | None,
                  conflist: str | None) -> dict[str, str]:
    """CNI, kube-proxy's mode (from /proxyMode) and the pod MTU, each with where it came from."""
    node, text = probe or ("", "")
    evidence = parse_node_probe(text)
    agents = agents_from_workloads(workloads)
    if agents:
        cni = f"{describe_cni(agents)}; {source_note(True)}"
    else:
        agents = agents_from_node(evidence, annotations)
        named = any(not a.policy_only for a in agents)
        cni = describe_cni(agents, conflist) + (f"; {source_note(False)} ({node})" if named else "")
    facts = {"CNI": cni}
    if evidence.proxy_mode:
        facts["kube-proxy mode"] = f"{evidence.proxy_mode} (kube-proxy's /proxyMode on {node})"
    elif probe and not any(name.startswith("kube-proxy") for name, _ in workloads) \
            and (translator := service_translator({node: None}, agents)):
        # Asked on the node, no kube-proxy answered nor runs as a pod: the CNI replaces it
        # (a kube-proxy ConfigMap left by kubeadm says nothing then).
        facts["kube-proxy mode"] = no_kube_proxy(translator)
    mtu = mtu_of_link(pod_link[1]) if pod_link else None
    if mtu:
        facts["Pod MTU"] = f"{mtu} (eth0 of a pod on {pod_link[0]})"
    elif pod_mtu_from_node(evidence.links):
        facts["Pod MTU"] = f"{pod_mtu_from_node(evidence.links)} (the pods' veths on {node})"
    else:
        facts["Pod MTU"] = UNKNOWN
    return facts


def gather(api: ApiClient, dns_ip: str | None, lab: bool, pods: RunPods | None = None) -> dict[str, str]:
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
    mode = None
    workloads: list[tuple[str, list[str]]] = []
    try:
        maps = core.list_namespaced_config_map("kube-system", _request_timeout=API_TIMEOUT).items
        for item in maps:
            if item.metadata.name == "kube-proxy":
                mode = next(filter(None, map(proxy_mode_from_config,
                                             (item.data or {}).values())), None)
        pods_in_system = core.list_namespaced_pod("kube-system", _request_timeout=API_TIMEOUT).items
        for pod in pods_in_system:
            if mode is None and pod.metadata.name.startswith("kube-proxy"):
                container = pod.spec.containers[0]
                mode = proxy_mode_from_args([*(container.command or []),
                                             *(container.args or [])])
        workloads = _workloads(api)
    except (ApiException, OSError):
        pass
    conflist = lab_mode = None
    if lab and nodes:
        lab_mode, conflist = _lab_facts(nodes[-1].metadata.name)
    annotations = (nodes[-1].metadata.annotations or {}) if nodes else {}
    network = network_facts(workloads, annotations, pods.node_probe() if pods else None,
                            pods.pod_link() if pods else None, conflist)
    # What kube-proxy itself answers beats its configuration; a lab node's rules come last.
    facts["kube-proxy mode"] = network.pop("kube-proxy mode", None) or mode or lab_mode or UNKNOWN
    facts.update(network)
    facts["DNS Service IP"] = dns_ip or UNKNOWN
    return facts
