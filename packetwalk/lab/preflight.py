"""Checks that turn a doomed `lab up` into one clear line before anything is made."""

import os
import shutil
import subprocess
from pathlib import Path

from . import cgroups
from . import topology as t
from .errors import LabError

TOOLS = {
    "nsenter": "util-linux", "unshare": "util-linux", "setpriv": "util-linux",
    "ip": "iproute2", "iptables": "iptables",
    "ipset": "ipset", "conntrack": "conntrack", "openssl": "openssl", "dig": "bind9-dnsutils",
    "curl": "curl", "go": "golang (1.26)", "gcc": "gcc (to build runc and flanneld)",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: it creates namespaces, mounts, cgroups and routes (run it as root)")


def kernel(proc: Path = Path("/proc")) -> None:
    filesystems = (proc / "filesystems").read_text()
    if "overlay" not in filesystems:
        raise LabError("missing kernel feature: overlayfs (containerd's snapshotter needs it)")
    if not (proc / "sys/net/bridge/bridge-nf-call-iptables").exists():
        raise LabError("missing kernel feature: br_netfilter (Service traffic on the CNI bridge needs it)")
    if not (proc / "sys/net/netfilter").exists() and not (proc / "net/nf_conntrack").exists():
        raise LabError("missing kernel feature: conntrack (kube-proxy needs it)")
    r = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise LabError(f"missing kernel feature: iptables nat table ({r.stderr.strip()})")
    cgroups.check_v1()


def check() -> None:
    require_root()
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not Path("/usr/include/seccomp.h").exists():
        missing.append("libseccomp headers (libseccomp-dev, to build runc)")
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("CNI plugins (containernetworking-plugins)")
    if missing:
        raise LabError("missing tools: " + ", ".join(missing))
    kernel()


def proxy_mode(mode: str) -> None:
    """nftables mode: kube-proxy (through knftables) runs the host's `nft`, and the
    kernel must have nf_tables."""
    if mode != "nftables":
        return
    if shutil.which("nft") is None:
        raise LabError("missing tools: nft (nftables), which kube-proxy's nftables mode runs")
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise LabError(f"missing kernel feature: nf_tables (kube-proxy's nftables mode needs it: "
                       f"{r.stderr.strip()})")


def port_free(netns: str, port: int) -> None:
    """A stray listener would make the API server exit with a cryptic bind error."""
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
                         capture_output=True, text=True, check=False).stdout
    if out.strip():
        raise LabError(f"port {port} is already in use in {netns}: {out.split()[3] if len(out.split()) > 3 else out.strip()}")


def ip_family(family: str, proc: Path = Path("/proc")) -> None:
    """Dual-stack and IPv6-only (the same wires): IPv6 in the kernel, ip6tables (the
    nodes' masquerade, kube-proxy's IPv6 proxier, kube-router's IPv6 policies) and
    br_netfilter's IPv6 hook."""
    if not t.has_ipv6(family):
        return
    asked = f"--ip-family {family}"
    if not (proc / "sys/net/ipv6").exists():
        raise LabError(f"{asked}: this kernel has no IPv6 (/proc/sys/net/ipv6 is missing)")
    if (proc / "sys/net/ipv6/conf/default/disable_ipv6").read_text().strip() != "0":
        raise LabError(f"{asked}: IPv6 is disabled on new interfaces here "
                       "(net.ipv6.conf.default.disable_ipv6 is not 0); pw-br0 could get no IPv6 address")
    missing = [tool for tool in ("ip6tables", "ip6tables-save", "ip6tables-restore") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"{asked}: missing tools: {', '.join(missing)} (iptables)")
    if not (proc / "sys/net/bridge/bridge-nf-call-ip6tables").exists():
        raise LabError(f"{asked}: missing kernel feature: br_netfilter's IPv6 hook "
                       "(bridge-nf-call-ip6tables)")
