"""Configuration and command lines of every component the lab runs.

Only text here: what each daemon is told. Starting and stopping them is
processes.py; the order and the waits are cluster.py.
"""

import os

from . import paths
from . import topology as t
from .errors import LabError

BIN = paths.BIN_DIR
POD_PREFIX = 24  # each node's IPv4 pod CIDR


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


def check_ip_family(family: str) -> str:
    if family == "ipv6":
        raise LabError("--ip-family ipv6: not built yet; dual or ipv4")
    if family not in t.IP_FAMILIES:
        raise LabError(f"--ip-family {family}: dual or ipv4")
    return family


def service_cidrs(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """--service-cluster-ip-range: dual-stack names both ranges, IPv4 first (the
    primary family: the kubernetes Service and DNS keep their IPv4 ClusterIPs)."""
    return f"{t.SERVICE_CIDR},{t.SERVICE_CIDR6}" if t.dual(family) else str(t.SERVICE_CIDR)


def pod_cidrs(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """--cluster-cidr (controller-manager) and clusterCIDR (kube-proxy), IPv4 first."""
    return f"{t.POD_CIDR},{t.POD_CIDR6}" if t.dual(family) else str(t.POD_CIDR)


def kube_apiserver(node: t.Node, admission_config: str | None = None,
                   family: str = t.DEFAULT_IP_FAMILY) -> list[str]:
    """admission_config: an AdmissionConfiguration file (lab up --pod-security).
    The API server stays on the node's IPv4 address in a dual-stack lab."""
    extra = [f"--admission-control-config-file={admission_config}"] if admission_config else []
    return [
        str(BIN / "kube"), "kube-apiserver",
        f"--advertise-address={node.ip}", "--bind-address=0.0.0.0", f"--secure-port={t.API_PORT}",
        "--etcd-servers=http://127.0.0.1:2379",
        f"--service-cluster-ip-range={service_cidrs(family)}",
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


def kube_controller_manager(family: str = t.DEFAULT_IP_FAMILY) -> list[str]:
    # Dual-stack needs a mask per family: the single --node-cidr-mask-size is single-stack only.
    masks = ([f"--node-cidr-mask-size-ipv4={POD_PREFIX}", f"--node-cidr-mask-size-ipv6={t.NODE_POD_PREFIX6}"]
             if t.dual(family) else [f"--node-cidr-mask-size={POD_PREFIX}"])
    return [
        str(BIN / "kube"), "kube-controller-manager", f"--kubeconfig={admin_kubeconfig()}",
        f"--authentication-kubeconfig={admin_kubeconfig()}", f"--authorization-kubeconfig={admin_kubeconfig()}",
        "--allocate-node-cidrs=true", f"--cluster-cidr={pod_cidrs(family)}", *masks,
        f"--service-cluster-ip-range={service_cidrs(family)}", f"--root-ca-file={pki('ca.crt')}",
        f"--service-account-private-key-file={pki('sa.key')}", "--use-service-account-credentials=true",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false", "--v=1",
    ]


def kube_scheduler() -> list[str]:
    return [
        str(BIN / "kube"), "kube-scheduler", f"--kubeconfig={admin_kubeconfig()}",
        f"--authentication-kubeconfig={admin_kubeconfig()}", f"--authorization-kubeconfig={admin_kubeconfig()}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false", "--v=1",
    ]


CNI_BIN_DIRS = ("/usr/lib/cni",)  # Debian's containernetworking-plugins


def containerd_config(node: t.Node, cni_bin_dirs: tuple[str, ...] = CNI_BIN_DIRS) -> str:
    """`cni_bin_dirs`: where containerd looks for the plugins a conflist names (a CNI
    that brings its own, cilium-cni, adds the lab's bin directory)."""
    dirs = ", ".join(f"'{d}'" for d in cni_bin_dirs)
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
      bin_dirs = [{dirs}]
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


def kubelet(node: t.Node, family: str = t.DEFAULT_IP_FAMILY) -> list[str]:
    # A dual-stack node lists both InternalIPs only when --node-ip names both; its
    # hostNetwork pods then get both podIPs (the suite's pod<->node twins need them).
    node_ip = f"{node.ip},{node.ip6}" if t.dual(family) else str(node.ip)
    return [
        str(BIN / "kube"), "kubelet", f"--config={paths.node_dir(node.name) / 'kubelet.yaml'}",
        f"--kubeconfig={admin_kubeconfig()}", f"--hostname-override={node.name}",
        f"--node-ip={node_ip}", "--v=1",
    ]


PROXY_MODES = ("iptables", "nftables")
DEFAULT_PROXY_MODE = "iptables"


def check_proxy_mode(mode: str) -> str:
    if mode not in PROXY_MODES:
        raise LabError(f"unknown proxy mode {mode!r}; known: {', '.join(PROXY_MODES)}")
    return mode


def kube_proxy_config(node: t.Node, mode: str = DEFAULT_PROXY_MODE,
                      family: str = t.DEFAULT_IP_FAMILY) -> str:
    # metricsBindAddress also serves /proxyMode: how the cluster's facts learn the mode.
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {admin_kubeconfig()}}}
hostnameOverride: {node.name}
mode: {check_proxy_mode(mode)}
clusterCIDR: {pod_cidrs(family)}
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
# nf_conntrack_max and the timeouts are host-wide: leave them alone.
conntrack: {{maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""


def kube_proxy(node: t.Node) -> list[str]:
    return [str(BIN / "kube"), "kube-proxy", f"--config={paths.node_dir(node.name) / 'kube-proxy.yaml'}", "--v=1"]


# The kube-dns Service as manifests/lab/coredns.yaml writes it (IPv4, SingleStack).
DNS_CLUSTER_IP_LINE = f"  clusterIP: {t.DNS_SERVICE_IP}\n"


def coredns_manifest(text: str, family: str = t.DEFAULT_IP_FAMILY) -> str:
    """manifests/lab/coredns.yaml for the lab's family. Dual-stack: the kube-dns Service
    RequireDualStack with a ClusterIP in each family (IPv4 first, so clusterDNS and
    every pod's resolv.conf keep 10.96.0.10). CoreDNS itself listens on both already."""
    if not t.dual(family):
        return text
    if text.count(DNS_CLUSTER_IP_LINE) != 1:
        raise LabError(f"coredns.yaml: expected one line {DNS_CLUSTER_IP_LINE.strip()!r} to make dual-stack")
    return text.replace(DNS_CLUSTER_IP_LINE, (
        "  ipFamilyPolicy: RequireDualStack\n"
        "  ipFamilies: [IPv4, IPv6]\n"
        f"  clusterIP: {t.DNS_SERVICE_IP}\n"
        f"  clusterIPs: [{t.DNS_SERVICE_IP}, {t.DNS_SERVICE_IP6}]\n"))
