"""Configuration and command lines of every component the lab runs.

Only text here: what each daemon is told. Starting and stopping them is
processes.py; the order and the waits are cluster.py.
"""

import os

from . import paths
from . import topology as t
from .errors import LabError

BIN = paths.BIN_DIR


def pki(name: str) -> str:
    return str(paths.PKI_DIR / name)


def admin_kubeconfig() -> str:
    # The same file the user gets: the lab's components share its system:masters identity.
    return str(paths.KUBECONFIG)


def env() -> dict[str, str]:
    # containerd finds its shim and runc on PATH.
    return {**os.environ, "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin"}


def etcd(node: t.Node) -> list[str]:
    return [
        str(BIN / "etcd"), "--name", node.name, "--data-dir", str(paths.node_dir(node.name) / "etcd"),
        "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", f"{node.name}=http://127.0.0.1:2380",
        "--unsafe-no-fsync",  # a throwaway lab on a shared disk; fsync latency only slows it down
        "--log-level", "warn",
    ]


def kube_apiserver(node: t.Node, admission_config: str | None = None) -> list[str]:
    """admission_config: an AdmissionConfiguration file (lab up --pod-security)."""
    extra = [f"--admission-control-config-file={admission_config}"] if admission_config else []
    return [
        str(BIN / "kube"), "kube-apiserver",
        f"--advertise-address={node.ip}", "--bind-address=0.0.0.0", f"--secure-port={t.API_PORT}",
        "--etcd-servers=http://127.0.0.1:2379",
        f"--service-cluster-ip-range={t.SERVICE_CIDR}",
        "--allow-privileged=true", "--authorization-mode=Node,RBAC",
        f"--client-ca-file={pki('ca.crt')}",
        f"--tls-cert-file={pki('apiserver.crt')}", f"--tls-private-key-file={pki('apiserver.key')}",
        # Node names resolve nowhere in the lab: dial kubelets by their InternalIP.
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={pki('admin.crt')}", f"--kubelet-client-key={pki('admin.key')}",
        f"--service-account-key-file={pki('sa.pub')}", f"--service-account-signing-key-file={pki('sa.key')}",
        f"--service-account-issuer=https://kubernetes.default.svc.{t.CLUSTER_DOMAIN}",
        "--profiling=false", "--v=1", *extra,
    ]


def kube_controller_manager() -> list[str]:
    return [
        str(BIN / "kube"), "kube-controller-manager", f"--kubeconfig={admin_kubeconfig()}",
        f"--authentication-kubeconfig={admin_kubeconfig()}", f"--authorization-kubeconfig={admin_kubeconfig()}",
        "--allocate-node-cidrs=true", f"--cluster-cidr={t.POD_CIDR}", "--node-cidr-mask-size=24",
        f"--service-cluster-ip-range={t.SERVICE_CIDR}", f"--root-ca-file={pki('ca.crt')}",
        f"--service-account-private-key-file={pki('sa.key')}", "--use-service-account-credentials=true",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false", "--v=1",
    ]


def kube_scheduler() -> list[str]:
    return [
        str(BIN / "kube"), "kube-scheduler", f"--kubeconfig={admin_kubeconfig()}",
        f"--authentication-kubeconfig={admin_kubeconfig()}", f"--authorization-kubeconfig={admin_kubeconfig()}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false", "--v=1",
    ]


def containerd_config(node: t.Node) -> str:
    return f"""version = 3
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10.2'
  [plugins.'io.containerd.cri.v1.runtime']
    tolerate_missing_hugetlb_controller = true
    # This machine withholds CAP_SYS_RESOURCE even from root, so nothing may
    # lower its oom_score_adj: clamp containers to containerd's own.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{BIN / "runc"}'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '/etc/cni/net.d'
"""


def containerd(node: t.Node) -> list[str]:
    cfg = paths.node_dir(node.name) / "containerd.toml"
    return [str(BIN / "containerd"), "--config", str(cfg), "--log-level", "warn"]


def containerd_socket(node: t.Node) -> str:
    """The node's socket as seen from the host (its /run/containerd is a private bind)."""
    return str(paths.node_dir(node.name) / "root/run/containerd/containerd.sock")


def kubelet_config(node: t.Node) -> str:
    taints = (
        "registerWithTaints:\n- key: node-role.kubernetes.io/control-plane\n  effect: NoSchedule\n"
        if node.control_plane else ""
    )
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {pki('ca.crt')}}}
authorization: {{mode: Webhook}}
address: {node.ip}
cgroupDriver: cgroupfs
cgroupRoot: /packetwalk/{node.name}
failCgroupV1: false
failSwapOn: false
clusterDomain: {t.CLUSTER_DOMAIN}
clusterDNS: [{t.DNS_SERVICE_IP}]
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
resolvConf: {paths.node_dir(node.name) / 'resolv.conf'}
serializeImagePulls: false
# Every node sees the same disk: relax GC and eviction as kind does.
imageGCHighThresholdPercent: 100
evictionHard: {{nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}}
localStorageCapacityIsolation: false
healthzBindAddress: 127.0.0.1
{taints}"""


def kubelet(node: t.Node) -> list[str]:
    return [
        str(BIN / "kube"), "kubelet", f"--config={paths.node_dir(node.name) / 'kubelet.yaml'}",
        f"--kubeconfig={admin_kubeconfig()}", f"--hostname-override={node.name}",
        f"--node-ip={node.ip}", "--v=1",
    ]


PROXY_MODES = ("iptables", "nftables")
DEFAULT_PROXY_MODE = "iptables"


def check_proxy_mode(mode: str) -> str:
    if mode not in PROXY_MODES:
        raise LabError(f"unknown proxy mode {mode!r}; known: {', '.join(PROXY_MODES)}")
    return mode


def kube_proxy_config(node: t.Node, mode: str = DEFAULT_PROXY_MODE) -> str:
    # metricsBindAddress also serves /proxyMode: how the cluster's facts learn the mode.
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {admin_kubeconfig()}}}
hostnameOverride: {node.name}
mode: {check_proxy_mode(mode)}
clusterCIDR: {t.POD_CIDR}
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
# nf_conntrack_max and the timeouts are host-wide: leave them alone.
conntrack: {{maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""


def kube_proxy(node: t.Node) -> list[str]:
    return [str(BIN / "kube"), "kube-proxy", f"--config={paths.node_dir(node.name) / 'kube-proxy.yaml'}", "--v=1"]
