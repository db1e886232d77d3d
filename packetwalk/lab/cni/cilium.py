"""Cilium: cilium-agent on every node as its DaemonSet runs it, the operator on the
control plane as its Deployment does, cilium-cni called by containerd. Cilium does
the pod network, NetworkPolicy and the Services (kube-proxy replacement): the lab
starts no kube-proxy and no kube-router beside it.

Written from a spike (agent v1.20.2 standalone in a netns on this machine) and from
Cilium's source, then run on the lab: 3 nodes Ready with no kube-proxy, the suites,
the ipBlock and relabel cases and the faults below as docs/networks.md records them.

The choices, each for a reason:
- Identities in CRDs (--identity-allocation-mode=crd), the normal Kubernetes mode.
  The operator registers the CRDs when it starts (pkg/k8s/apis createCRDs, an
  OnStart hook, before leader election); the agent waits for them up to
  --crd-wait-timeout (5m) and exits after. So the operator starts first.
- IPAM from the Node objects (--ipam=kubernetes): the controller-manager already
  gives each node its podCIDR, as for the other CNIs.
- Native routing with --auto-direct-node-routes, not VXLAN: every node's eth0 is on
  one L2 segment (pw-br0, topology.UNDERLAY), which is what auto-direct-node-routes
  needs; no tunnel keeps the bridge and kube-router labs' shape (pods get eth0's MTU),
  and the pod addresses stay visible on the wire to the suite's captures.
- Legacy host routing (--enable-host-legacy-routing=true) and no Cilium
  masquerade: pod traffic between the node's stack and eth0 still passes netfilter,
  so the lab's PW-MASQ does the egress NAT as on the other CNIs, and the
  egress-masquerade and cross-node-route faults (iptables) act on it. BPF host
  routing would bypass both.
- Socket LB on, as on every real kube-proxy-replacement install: in v1.20
  --kube-proxy-replacement=true turns it on whatever --bpf-lb-sock says
  (pkg/kpr/kpr.go NewKPRConfig; the Helm chart's socketLB.enabled=false writes
  bpf-lb-sock "false" and is overridden the same way), and not host-namespace-only
  (bpf-lb-sock-hostns-only false), so Services are translated at connect()/sendmsg()
  for pods and the node's own processes alike, per packet at the pod's interface
  only where socket LB cannot. It attaches at the agent's --cgroup-root: here the
  node's cgroup2 directory (cgroups.UNIFIED), below which runc puts the node's pods
  and the lab its daemons and its node-side probes (processes.as_node_process, the
  `dig @10.96.0.10` lab up waits on), so it reaches exactly one node, as the real
  root reaches one real node. Attached at the host's cgroup2 root it would reach
  every process on the machine, the other nodes' and other labs' too.

Namespaces (as the spike's agent-ns.sh, changed where the lab needs it):
- The agent runs in the node's network and mount namespaces, then in a private
  mount namespace of its own (unshare) with read-only binds of /proc/sys/kernel and
  /proc/sys/net/core, so the host's global sysctls stay untouched, and the node's
  cgroup2 directory bound as its --cgroup-root.
- bpffs is mounted at /sys/fs/bpf in the node's mount namespace (not the agent's):
  it lives as long as the node, as a host's does, so the pins (maps, tcx links)
  outlive an agent that stops, and the datapath keeps running without it, as on a
  real node (cilium-agent-down relies on this).
- The API socket: /run/cilium is one of the node's private paths (nodes.PRIVATE_PATHS),
  a bind of a per-node directory. The agent's private mount namespace is a copy of
  the node's, so its --state-dir /run/cilium, and so /var/run/cilium/cilium.sock,
  is the very directory containerd's cilium-cni sees in the node (the spike had to
  nsenter into the agent; here nothing does). cilium-cni reads no socket path from
  its conflist, only the default or $CILIUM_SOCK (pkg/client DefaultSockPath), and
  containerd's environment is the lab's own: the shared directory is the simpler way.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import ClassVar

from .. import cgroups, paths, versions
from .. import topology as t
from ..build import CILIUM_LIB
from ..components import BIN, admin_kubeconfig
from ..errors import LabError
from ..processes import alive, check_running, enter, run, start, stop_component
from ..state import State
from . import Cni, CniFault
from .kube_router import KubeRouter

AGENT = "cilium-agent"
OPERATOR = "cilium-operator"
CNI_BINARY = "cilium-cni"
OPERATOR_BINARY = "cilium-operator-generic"
CONFLIST = "05-cilium.conflist"
NAMESPACE = "kube-system"  # the DaemonSet's and the Deployment's
UPLINK = "eth0"  # network.make_node's veth into the node
STATE_DIR = "/run/cilium"  # in nodes.PRIVATE_PATHS: shared with the node's containerd
SOCKET = "/var/run/cilium/cilium.sock"  # cilium-cni's default (pkg/client)
BPF_ROOT = "/sys/fs/bpf"
CLANG_PATH = "/usr/lib/llvm-19/bin"  # Debian's clang-19 and llc-19, first on the agent's PATH
HOST_NEEDS = ((f"{CLANG_PATH}/clang", "clang-19"), (f"{CLANG_PATH}/llc", "llvm-19"))
AGENT_WAIT = 180.0  # the first start compiles the datapath (clang) on a 2-CPU machine
OPERATOR_CRDS = ("ciliumidentities.cilium.io", "ciliumendpoints.cilium.io", "ciliumnodes.cilium.io")
CRD_WAIT = 120.0


def conflist() -> str:
    """The CNI config the DaemonSet's install step writes, in the node's /etc/cni/net.d."""
    return json.dumps({"cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": CNI_BINARY}]},
                      indent=1)


def cgroup_root(node: t.Node) -> str:
    """Where the node's cgroup2 directory is bound for the agent: a per-node path
    on the host, empty outside the agent's own mount namespace."""
    return str(paths.node_dir(node.name) / "cilium-cgroup2")


# Runs in the agent's private mount namespace: $1 the node's cgroup2 directory,
# $2 the agent's --cgroup-root, then the agent's argv.
NS_SCRIPT = (
    'mkdir -p "$2"; mount --bind "$1" "$2"; '
    "for d in /proc/sys/kernel /proc/sys/net/core; do "
    'mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done; '
    'shift 2; exec "$@"'
)


def agent_flags(node: t.Node) -> list[str]:
    return [
        f"--k8s-kubeconfig-path={admin_kubeconfig()}",  # the API server's own address, not a Service
        f"--k8s-namespace={NAMESPACE}",
        "--identity-allocation-mode=crd",
        "--ipam=kubernetes", "--k8s-require-ipv4-pod-cidr=true",
        "--enable-ipv4=true", "--enable-ipv6=false",
        "--routing-mode=native", "--auto-direct-node-routes=true",
        f"--ipv4-native-routing-cidr={t.POD_CIDR}",
        f"--devices={UPLINK}", f"--direct-routing-device={UPLINK}",
        # Socket LB comes with it (the module's docstring), as on a real install.
        "--kube-proxy-replacement=true",
        "--enable-host-legacy-routing=true", "--enable-ipv4-masquerade=false",
        "--enable-policy=default",
        # What the lab has no use for, off as in the spike: Envoy (no L7 policy),
        # Hubble, the health prober's extra endpoints.
        "--enable-l7-proxy=false", "--enable-hubble=false",
        "--enable-health-checking=false", "--enable-endpoint-health-checking=false",
        f"--lib-dir={paths.BIN_DIR / CILIUM_LIB}", f"--state-dir={STATE_DIR}",
        f"--bpf-root={BPF_ROOT}", f"--cgroup-root={cgroup_root(node)}",
    ]


def agent(node: t.Node) -> list[str]:
    """The agent's argv, run on the node (processes.start enters its namespaces)."""
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-ec", NS_SCRIPT, "cilium-agent-ns",
        str(cgroups.unified_node_dir(node.name)), cgroup_root(node),
        # `env` carries the DaemonSet's variables: the node name and clang on PATH.
        "env", f"K8S_NODE_NAME={node.name}", f"PATH={CLANG_PATH}:/usr/sbin:/usr/bin:/sbin:/bin",
        str(BIN / AGENT), *agent_flags(node),
    ]


def operator(node: t.Node) -> list[str]:
    return [
        "env", f"K8S_NODE_NAME={node.name}",
        str(BIN / OPERATOR_BINARY), f"--k8s-kubeconfig-path={admin_kubeconfig()}",
        f"--k8s-namespace={NAMESPACE}", "--identity-allocation-mode=crd", "--ipam=kubernetes",
        "--enable-metrics=false",
    ]


def mount_bpffs(node: t.Node) -> list[str]:
    """bpffs at /sys/fs/bpf in the node's mount namespace, once (the host has none)."""
    return enter(node.name) + ["sh", "-ec", f"mountpoint -q {BPF_ROOT} || mount -t bpf bpf {BPF_ROOT}"]


def _running(state: State, name: str, node: t.Node) -> bool:
    return any(p.name == name and p.node == node.name and alive(p) for p in state.procs)


def _await(state: State, node: t.Node, name: str, ready, what: str, timeout: float) -> None:
    """Poll `ready` until true, failing as soon as the process `name` on the node exits."""
    proc = next(p for p in reversed(state.procs) if p.name == name and p.node == node.name)
    deadline = time.monotonic() + timeout
    while not ready():
        check_running(proc)  # names the node and the log when it exits
        if time.monotonic() > deadline:
            raise LabError(f"{name} on {node.name}: {what} within {timeout:.0f}s "
                           f"(log: {paths.LOG_DIR / f'{node.name}-{name}.log'})")
        time.sleep(1)


def _await_crds(state: State, node: t.Node) -> None:
    from ..cluster import kubectl  # the lab's kubectl: the admin kubeconfig

    def registered() -> bool:
        out = kubectl("get", "crd", *OPERATOR_CRDS, "-o", "name", check=False)
        return out.count("\n") >= len(OPERATOR_CRDS)
    _await(state, node, OPERATOR, registered, "registered no Cilium CRDs", CRD_WAIT)


def _await_socket(state: State, node: t.Node) -> None:
    """The agent is up for the CNI once its API socket answers in the node."""
    probe = enter(node.name) + ["curl", "-s", "-m", "2", "--unix-socket", SOCKET, "http://localhost/v1/healthz"]
    _await(state, node, AGENT, lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0,
           f"no answer on {SOCKET}", AGENT_WAIT)


def _start_agent(state: State, node: t.Node) -> None:
    cgroups.ensure_unified(node.name)
    run(mount_bpffs(node), f"mounting bpffs in {node.name}")
    start(state, node.name, AGENT, agent(node))
    _await_socket(state, node)


def _agent_down(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    """cilium-agent stopped on one node, as a crashed or evicted agent pod. Its
    datapath stays (the pins in the node's bpffs): running pods keep talking, but
    nothing on the node changes any more: new pods get no network (cilium-cni finds
    no agent), new policies and Service endpoints are not programmed there."""
    stop_component(state, AGENT, node.name)


def _agent_up(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    _start_agent(state, node)


class Cilium(Cni):
    name = "cilium"
    builds = ("cilium",)
    replaces_kube_proxy = True
    # A label change makes Cilium allocate a new identity and every other node learn it
    # from the endpoint's CiliumEndpoint (native routing carries no identity in the
    # packet): measured on this 2-CPU lab, up to 36.1 s under the full run
    # (docs/networks.md, 2026-11-30), past the suite's default of 20 s.
    policy_timeout = 45.0
    host_needs = HOST_NEEDS
    # IPv4 only (--enable-ipv6=false, IPAM from the Nodes' IPv4 podCIDR): `lab up
    # --ip-family dual` refuses cilium in one line (cluster.check_cni_family).
    ip_families = ("ipv4",)
    cni_bin_dirs = (str(paths.BIN_DIR),)  # cilium-cni, built beside the agent
    # Which lab faults apply (bench/matrix.py runs each on cilium; docs/networks.md):
    #  applied as on any CNI (the control plane, CoreDNS): dns-down,
    #    controller-manager-down, scheduler-down;
    #  dns-policy: a NetworkPolicy, which cilium enforces;
    #  egress-masquerade: the lab's PW-MASQ does the NAT (no cilium masquerade,
    #    legacy host routing); cross-node-route: see cut_off.
    # Left out, each for a reason:
    #  kube-proxy-broken: there is no kube-proxy.
    #  policy-enforcer-down, policy-ignores-*: kube-router's; cilium-agent-down is
    #    the nearest (it also stops the node's network from changing).
    #  nodeport-blocked, nodeport-udp-blocked: their mangle PREROUTING rule comes
    #    after cilium's NodePort translation on eth0's tc ingress: it would not block.
    #  udp-dropped, udp-lossy: pods on one node reach each other lxc to lxc in BPF,
    #    past netfilter: only the cross-node half would drop.
    #  hairpin-off: no bridge, cilium's BPF does hairpin.
    #  mtu-mismatch: cilium sets the pods' and routes' MTU from eth0's at its start;
    #    not studied.
    #  cross-node-route-ipv6: IPv4 only here (ip_families), so no IPv6 way to cut.
    faults_supported = frozenset({
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "egress-masquerade", "cross-node-route", "cilium-agent-down"})
    # cross-node-route is kube-router's firewall (cut_off below), so its wording too.
    fault_symptoms: ClassVar[dict[str, str]] = {"cross-node-route": KubeRouter.fault_symptoms["cross-node-route"]}
    own_faults = (CniFault(
        "cilium-agent-down", "cilium-agent stopped on one node: its datapath stays, but new pods there "
        "get no network and nothing (policies, Service endpoints) is updated on it", True,
        _agent_down, _agent_up),)

    def configure_node(self, node: t.Node, pod_cidr: str) -> None:
        """What the DaemonSet's install-cni step does: the conflist (cilium-cni
        stays in the lab's bin directory, one of containerd's bin_dirs). The
        pod CIDR is the agent's to read from the Node (--ipam=kubernetes)."""
        netd = paths.cni_conf_dir(node.name)
        netd.mkdir(parents=True, exist_ok=True)
        (netd / CONFLIST).write_text(conflist())

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str]) -> None:
        """Nothing: with auto-direct-node-routes each agent routes to the others' pod CIDRs."""

    def start(self, state: State, node: t.Node) -> None:
        """On the control plane the operator first (it registers the CRDs the agents
        wait for), then the agent on each node, up once its API socket answers."""
        if node.control_plane and not _running(state, OPERATOR, node):
            start(state, node.name, OPERATOR, operator(node))
            _await_crds(state, node)
        if not _running(state, AGENT, node):
            _start_agent(state, node)

    # cross-node-route: kube-router's firewall in front of the node's pods (raw
    # PREROUTING on eth0; the agent would put a deleted route back). Cilium's program on
    # eth0's tc ingress runs first; with legacy host routing it hands pod-bound packets
    # to the stack, where the rule sees them: the matrix measured the cut (2026-11-30).
    cut_off = KubeRouter.cut_off
    reconnect = KubeRouter.reconnect

    def versions(self) -> str:
        return f"cilium {versions.CILIUM}, routing, NetworkPolicy and Services (no kube-proxy)"


CNI = Cilium()
