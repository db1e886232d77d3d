"""Which network a cluster runs, told by the cluster itself: the CNI and its
version, kube-proxy's mode, the pod MTU. Pure parsing and deciding; the
report (report/facts.py) and `packetwalk lab status` gather the inputs.

Where each fact comes from, first match wins:
- the CNI and its version: the CNI agents' DaemonSets or pods in kube-system
  (name and image tag); else what the agents leave on the nodes: flannel's
  node annotations, the interfaces and routes a node shows (flannel.1,
  kube-bridge and routes of proto 0x11, cilium_host, calico's tunnels),
  kube-router's health and metrics ports; else "unknown (no CNI agent found)"
  with the plugin types of a CNI config when one is readable.
- kube-proxy's mode: its /proxyMode endpoint on the metrics port, seen from
  the node (a hostNetwork pod). None answering on any node asked, with a CNI
  known to replace kube-proxy (REPLACES_KUBE_PROXY: it translates Services
  itself), it is "none", not unknown.
- the pod MTU: a pod's eth0; from the node, the host side of a pod's veth
  (the bridge plugin gives both ends the same MTU).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

UNKNOWN = "unknown"
NO_AGENT = "unknown (no CNI agent found)"
PROXY_MODE_PORT = 10249  # kube-proxy's metricsBindAddress, where /proxyMode is served
KUBE_ROUTER_HEALTH_PORT = 20244  # its DaemonSet's livenessProbe port
KUBE_ROUTER_METRICS_PORT = 8080
PROXY_MODES = ("iptables", "nftables", "ipvs", "kernelspace")
# CNIs known to replace kube-proxy (cilium's kube-proxy replacement): where one runs
# and no kube-proxy answers, there is none, and the CNI translates Services. Each with
# the chains it leaves in a node's iptables-save, by which the diagnosis tells it is
# there (cilium installs its CILIUM_* chains with kube-proxy replacement too). The one
# list: the diagnosis (diagnose/capture.py) reads it, the lab's CNIs are tested against it.
REPLACES_KUBE_PROXY = {"cilium": re.compile(r"^:CILIUM_\w+ ", re.MULTILINE)}

# CNIs that never match the pods they manage by a NetworkPolicy ipBlock, documented
# by the CNI: (what it documents, where). A policy case that needs an ipBlock to match
# pod IPs (hops.POD_IP_BLOCK) skips on such a node saying so (PolicyWalk.unmet), and the
# diagnosis of such dropped traffic names them (diagnose/policies.conclude_cell).
IGNORES_POD_IP_BLOCKS = {
    "cilium": (("Cilium's CIDR rules never select the endpoints it manages (a known missing "
                "feature in its Kubernetes compatibility notes"), "cilium/cilium#9209"),
}
# The links a node shows, read for the CNIs above (agents_from_node reads them).
LINKS_SCRIPT = "ip -o link"

# Workload name prefix in kube-system -> CNI. Longer prefixes first where they overlap.
AGENTS = (
    ("kube-flannel", "flannel"), ("flannel", "flannel"), ("calico-node", "calico"),
    ("cilium", "cilium"), ("canal", "canal"), ("kube-router", "kube-router"),
    ("weave-net", "weave"), ("antrea-agent", "antrea"), ("kindnet", "kindnet"),
    ("aws-node", "aws-vpc-cni"), ("kube-ovn-cni", "kube-ovn"), ("ovnkube-node", "ovn-kubernetes"),
)
# A node's interface -> the CNI that makes it.
LINKS = (("flannel.1", "flannel"), ("kube-bridge", "kube-router"), ("cilium_host", "cilium"),
         ("vxlan.calico", "calico"), ("weave", "weave"), ("antrea-gw0", "antrea"))
FLANNEL_BACKEND = "flannel.alpha.coreos.com/backend-type"
KUBE_ROUTER_PROTO = ("17", "zebra")  # the proto of the routes kube-router installs (0x11)


@dataclass(frozen=True)
class Agent:
    cni: str
    version: str | None = None
    detail: str = ""  # e.g. "vxlan" for flannel's backend
    policy_only: bool = False  # a NetworkPolicy agent beside the CNI (kube-router firewall-only)

    def line(self) -> str:
        extra = ", ".join(filter(None, [self.version, self.detail]))
        return f"{self.cni} ({extra})" if extra else self.cni


def image_version(image: str) -> str | None:
    """The tag of an image reference ("docker.io/flannel/flannel:v0.28.4@sha256:..." -> v0.28.4)."""
    ref = image.split("@", 1)[0]
    _, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not tag:
        return None
    return tag


def agents_from_workloads(workloads: list[tuple[str, list[str]]]) -> list[Agent]:
    """[(DaemonSet or pod name, its containers' images)] in kube-system -> the CNI
    agents among them; the version is the first container's tag (the agent's)."""
    found: dict[str, Agent] = {}
    for name, images in workloads:
        cni = next((c for prefix, c in AGENTS if name.startswith(prefix)), None)
        if cni is None or cni in found:
            continue
        found[cni] = Agent(cni, image_version(images[0]) if images else None)
    return list(found.values())


@dataclass
class NodeEvidence:
    """What a node shows to a hostNetwork pod on it (NODE_SCRIPT's sections)."""

    links: list[tuple[str, int, str]] = field(default_factory=list)  # (name, mtu, master)
    routes: list[str] = field(default_factory=list)
    proxy_mode: str | None = None
    kube_router_healthy: bool = False
    kube_router_version: str | None = None


# Run on the node (a hostNetwork pod, or the lab's node namespace): every tool it
# uses (ip, curl) is in agnhost. A section may be empty; none fails the script.
NODE_SCRIPT = (
    "echo '@@ links'; ip -o link 2>/dev/null; "
    "echo '@@ routes'; ip -o -4 route 2>/dev/null; "
    f"echo '@@ proxymode'; curl -s -m 2 http://127.0.0.1:{PROXY_MODE_PORT}/proxyMode 2>/dev/null; echo; "
    f"echo '@@ kube-router-health'; curl -s -m 2 -o /dev/null -w '%{{http_code}}' "
    f"http://127.0.0.1:{KUBE_ROUTER_HEALTH_PORT}/healthz 2>/dev/null; echo; "
    f"echo '@@ kube-router-metrics'; curl -s -m 2 http://127.0.0.1:{KUBE_ROUTER_METRICS_PORT}/metrics "
    "2>/dev/null | grep '^kube_router_build_info'; true"
)
_SECTION = re.compile(r"^@@ (\S+)$")
_LINK = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s.*?\bmtu (\d+)(?:.*?\bmaster (\S+))?")


def sections(text: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        marker = _SECTION.match(line)
        if marker:
            current = found.setdefault(marker.group(1), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def parse_links(text: str) -> list[tuple[str, int, str]]:
    """`ip -o link` -> [(name, mtu, master or "")]."""
    links = []
    for line in text.splitlines():
        m = _LINK.match(line.strip())
        if m:
            links.append((m.group(1), int(m.group(2)), m.group(3) or ""))
    return links


def proxy_mode_from_endpoint(text: str) -> str | None:
    """kube-proxy's /proxyMode answer ("iptables", "nftables", "ipvs"); None for anything else."""
    word = text.strip()
    return word if word in PROXY_MODES else None


def service_translator(answers: dict[str, str | None], agents: list[Agent]) -> str | None:
    """The CNI that stands in for kube-proxy: one of REPLACES_KUBE_PROXY among the
    agents found, when no node asked ({node: its /proxyMode answer or None}) had a
    kube-proxy answering. None otherwise (kube-proxy answers, or nothing was asked)."""
    if not answers or any(answers.values()):
        return None
    return next((a.cni for a in agents if not a.policy_only and a.cni in REPLACES_KUBE_PROXY), None)


def no_kube_proxy(cni: str) -> str:
    return f"none (no kube-proxy; Services translated by {cni})"


def proxy_mode_line(answers: dict[str, str | None], agents: list[Agent]) -> str:
    """kube-proxy's mode from every node's /proxyMode answer: the modes, "none" with
    the CNI that translates Services instead (service_translator), else "unknown"
    where a node did not answer, saying where it was asked."""
    cni = service_translator(answers, agents)
    if cni:
        return no_kube_proxy(cni)
    modes = sorted({mode or UNKNOWN for mode in answers.values()}) or [UNKNOWN]
    return f"{', '.join(modes)} (kube-proxy's /proxyMode on {', '.join(answers) or 'no node'})"


def kube_router_version(metrics: str) -> str | None:
    found = re.search(r'^kube_router_build_info\{[^}]*\bversion="([^"]*)"', metrics, re.MULTILINE)
    return found.group(1) or None if found else None


def parse_node_probe(text: str) -> NodeEvidence:
    parts = sections(text)
    return NodeEvidence(
        links=parse_links(parts.get("links", "")),
        routes=[r for r in parts.get("routes", "").splitlines() if r.strip()],
        proxy_mode=proxy_mode_from_endpoint(parts.get("proxymode", "")),
        kube_router_healthy=parts.get("kube-router-health", "").strip() == "200",
        kube_router_version=kube_router_version(parts.get("kube-router-metrics", "")))


def mtu_of_link(text: str) -> int | None:
    """The MTU in `ip link show eth0` (or `ip -o link`'s line for it)."""
    found = re.search(r"\bmtu (\d+)\b", text)
    return int(found.group(1)) if found else None


# The host ends of pods' veths on a CNI that routes each pod instead of bridging them:
# no master, named by the CNI (cilium's lxc<hash>, calico's cali<hash>). Cilium's own
# health endpoint (lxc_health) is not a pod. Both ends get the pod's MTU from the CNI.
ROUTED_VETHS = ("lxc", "cali")
NOT_A_POD = frozenset({"lxc_health"})


def pod_mtu_from_node(links: list[tuple[str, int, str]]) -> int | None:
    """The MTU of the pods' veths on the node: the host ends on a bridge (cni0,
    kube-bridge), or routed (ROUTED_VETHS), share it with the pods' eth0. None when
    no pod runs there, or when the pods' MTUs differ (no one answer)."""
    mtus = sorted({mtu for name, mtu, master in links
                   if (name.startswith("veth") and master)
                   or (name.startswith(ROUTED_VETHS) and name not in NOT_A_POD)})
    return mtus[0] if len(mtus) == 1 else None


def _learned_by_kube_router(routes: list[str]) -> bool:
    for line in routes:
        words = line.split()
        if "proto" in words and words.index("proto") + 1 < len(words) \
                and words[words.index("proto") + 1] in KUBE_ROUTER_PROTO:
            return True
    return False


def agents_from_node(evidence: NodeEvidence, annotations: dict[str, str]) -> list[Agent]:
    """The CNI agents a node shows when none runs as a pod."""
    names = {name for name, _, _ in evidence.links}
    found: dict[str, Agent] = {}
    backend = annotations.get(FLANNEL_BACKEND)
    if backend:
        found["flannel"] = Agent("flannel", None, backend)
    for link, cni in LINKS:
        if link in names and cni not in found:
            found[cni] = Agent(cni)
    routing = "kube-router" in found or _learned_by_kube_router(evidence.routes)
    if routing or evidence.kube_router_healthy:
        # Healthy and routing nothing: the firewall-only pairing, NetworkPolicy beside a CNI.
        found["kube-router"] = Agent("kube-router", evidence.kube_router_version, policy_only=not routing)
    return list(found.values())


def conflist_types(text: str) -> str | None:
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


def describe_cni(agents: list[Agent], conflist_types: str | None = None) -> str:
    cnis = [a.line() for a in agents if not a.policy_only]
    policy = [a.line() for a in agents if a.policy_only]
    text = " + ".join(cnis) or NO_AGENT + (f"; CNI config: {conflist_types}" if conflist_types else "")
    return text + (f"; NetworkPolicy by {', '.join(policy)}" if policy else "")


def source_note(from_pods: bool) -> str:
    return "from kube-system's DaemonSets" if from_pods else "seen on the nodes, no CNI agent pod"
