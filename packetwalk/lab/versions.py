"""Every pinned upstream version the lab builds or names, in one place.

Kubernetes 1.37 is the newest release whose go.mod fits this machine's Go
(1.26) and that still runs on cgroup v1 (kubelet `failCgroupV1: false`).
The image tags follow what kubeadm 1.37 pins, so manifests written for real
clusters run unchanged with imagePullPolicy IfNotPresent.
"""

KUBERNETES = "v1.37.2"
ETCD = "v3.7.3"
CONTAINERD = "v2.4.2"
RUNC = "v1.5.2"  # containerd v2.4.2 script/setup/runc-version
COREDNS = "v1.14.6"
# The only kube-router on the module proxy here (`go list -m -versions`, 2026-11-30): the
# policy agent on bridge and flannel, the whole CNI on kube-router. Security flaws are
# reported for v2.1.0, and it enforces no IPv6 NetworkPolicy (kube-router#1653); the lab is
# a closed network on one machine, and a newer release is to replace it once one is served.
KUBE_ROUTER = "v2.1.0"
# flanneld (VXLAN, kube-subnet-mgr). v0.28.10 is also on the proxy: the upgrade target.
FLANNEL = "v0.28.4"
FLANNEL_UPGRADE = "v0.28.10"
# cilium-agent, cilium-cni and cilium-operator-generic (github.com/cilium/cilium on
# the module proxy; the spike in /var/tmp/cilium-spike ran this one standalone).
CILIUM = "v1.20.2"

PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"
COREDNS_IMAGE = f"registry.k8s.io/coredns/coredns:{COREDNS}"
# test/images/agnhost/VERSION at the Kubernetes tag above.
AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"


def staging_version(kubernetes: str = KUBERNETES) -> str:
    """k8s.io staging modules are tagged v0.<minor>.<patch> for release v1.<minor>.<patch>."""
    return "v0." + kubernetes.removeprefix("v1.")
