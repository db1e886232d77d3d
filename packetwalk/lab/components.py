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
    if family not in t.IP_FAMILIES:
        raise LabError(f"--ip-family {family}: ipv4, dual or ipv6")
    return family


def per_family(family: str, ipv4: object, ipv6: object) -> str:
    """What a flag names in a lab of this family: the IPv4 value, the IPv6 one, or
    both (dual-stack: IPv4 first, the primary family)."""
    return ",".join(str(v) for v, on in ((ipv4, t.has_ipv4(family)), (ipv6, t.has_ipv6(family))) if on)


def service_cidrs(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """--service-cluster-ip-range: dual-stack names both ranges, IPv4 first (the
    primary family: the kubernetes Service and DNS keep their IPv4 ClusterIPs);
    IPv6-only, the IPv6 range alone."""
    return per_family(family, t.SERVICE_CIDR, t.SERVICE_CIDR6)


def pod_cidrs(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """--cluster-cidr (controller-manager) and clusterCIDR (kube-proxy), IPv4 first."""
    return per_family(family, t.POD_CIDR, t.POD_CIDR6)


def api_server_ip(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """The address the API server advertises and the kubeconfig names. IPv6-only: its
    IPv6 one, as a real IPv6-only cluster's, and not a choice: kube-apiserver refuses
    an advertise address outside the primary Service family ("service IP family ...
    must match public address family", cmd/kube-apiserver/app/options/validation.go)."""
    return str(t.API_SERVER_IP6 if t.ipv6_only(family) else t.API_SERVER_IP)


def api_server_url(family: str = t.DEFAULT_IP_FAMILY) -> str:
    """The kubeconfig's server: an IPv6 literal in brackets."""
    host = api_server_ip(family)
    return f"https://{f'[{host}]' if ':' in host else host}:{t.API_PORT}"


def kube_apiserver(node: t.Node, admission_config: str | None = None,
                   family: str = t.DEFAULT_IP_FAMILY) -> list[str]:
    """admission_config: an AdmissionConfiguration file (lab up --pod-security).
    The API server stays on the node's IPv4 address in a dual-stack lab. IPv6-only,
    it advertises the node's IPv6 (api_server_ip) and binds "::", which on Linux
    takes IPv4 too: the kubeconfig, the kubernetes Service's endpoint and every
    component dial the IPv6 address."""
    extra = [f"--admission-control-config-file={admission_config}"] if admission_config else []
    advertise, bind = (node.ip6, "::") if t.ipv6_only(family) else (node.ip, "0.0.0.0")
    return [
        str(BIN / "kube"), "kube-apiserver",
        f"--advertise-address={advertise}", f"--bind-address={bind}", f"--secure-port={t.API_PORT}",
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
    # Dual-stack needs a mask per family: the single --node-cidr-mask-size is single-stack
    # only. Single-stack IPv6 takes --node-cidr-mask-size-ipv6 alone (the -ipv4 one is
    # refused there: setNodeCIDRMaskSizes, cmd/kube-controller-manager/app/core.go).
    v4, v6 = f"--node-cidr-mask-size-ipv4={POD_PREFIX}", f"--node-cidr-mask-size-ipv6={t.NODE_POD_PREFIX6}"
    masks = [v4, v6] if t.dual(family) else [v6] if t.ipv6_only(family) else [f"--node-cidr-mask-size={POD_PREFIX}"]
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


def kubelet_config(node: t.Node, family: str = t.DEFAULT_IP_FAMILY) -> str:
    """IPv6-only: the kubelet serves on the node's IPv6 (the API server dials its
    InternalIP) and pods get the IPv6 DNS Service as their nameserver."""
    six = t.ipv6_only(family)
    address, dns = (node.ip6, t.DNS_SERVICE_IP6) if six else (node.ip, t.DNS_SERVICE_IP)
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
address: {address}
cgroupDriver: cgroupfs
cgroupRoot: /packetwalk/{node.name}
failCgroupV1: false
failSwapOn: false
clusterDomain: {t.CLUSTER_DOMAIN}
clusterDNS: [{dns}]
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
    # IPv6-only: the IPv6 alone, so the node's one InternalIP is IPv6.
    return [
        str(BIN / "kube"), "kubelet", f"--config={paths.node_dir(node.name) / 'kubelet.yaml'}",
        f"--kubeconfig={admin_kubeconfig()}", f"--hostname-override={node.name}",
        f"--node-ip={per_family(family, node.ip, node.ip6)}", "--v=1",
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
    # IPv6-only: bindAddress names the node's IPv6, which makes IPv6 kube-proxy's primary
    # family without waiting for the Node object (detectNodeIPs, cmd/kube-proxy/app/
    # server.go; it binds nothing to it). healthz and metrics stay on IPv4 wildcards
    # and loopback: the lab's own probes (restart.py, netstatus.py) ask 127.0.0.1, and
    # kube-proxy, able to run both families here, does not refuse them.
    bind = f"bindAddress: {node.ip6}\n" if t.ipv6_only(family) else ""
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {admin_kubeconfig()}}}
hostnameOverride: {node.name}
{bind}mode: {check_proxy_mode(mode)}
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
    every pod's resolv.conf keep 10.96.0.10). IPv6-only: SingleStack [IPv6] at
    fd10:0:0:9600::a, the kubelets' clusterDNS. CoreDNS itself listens on every
    address of its pod already (`.:53`), IPv6 included."""
    if not t.has_ipv6(family):
        return text
    if text.count(DNS_CLUSTER_IP_LINE) != 1:
        raise LabError(f"coredns.yaml: expected one line {DNS_CLUSTER_IP_LINE.strip()!r} "
                       f"to make it {family}")
    ips = per_family(family, t.DNS_SERVICE_IP, t.DNS_SERVICE_IP6).split(",")
    families = per_family(family, "IPv4", "IPv6").replace(",", ", ")
    return text.replace(DNS_CLUSTER_IP_LINE, (
        f"  ipFamilyPolicy: {'RequireDualStack' if len(ips) > 1 else 'SingleStack'}\n"
        f"  ipFamilies: [{families}]\n"
        f"  clusterIP: {ips[0]}\n"
        f"  clusterIPs: [{', '.join(ips)}]\n"))
