"""A node = its own network, mount and hostname namespaces.

Several paths are shared or hard-coded whatever the flags say (the kubelet's
device-plugin dir, containerd's state, /etc/cni/net.d, /var/lib/cni,
/var/log/pods which the kubelet's GC would prune for other nodes, netns bind
mounts). Inside each node's mount namespace a per-node directory is bound
over each of them, as kind's node entrypoint does for a container.
"""

import subprocess
from pathlib import Path

from . import paths
from .errors import LabError
from .processes import run
from .state import State

PRIVATE_PATHS = (
    "/var/lib/kubelet", "/var/lib/containerd", "/run/containerd", "/etc/cni/net.d",
    "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/run/netns", "/run/nri",
    "/var/lib/kube-router", "/etc/kubernetes",
    "/run/flannel", "/etc/kube-flannel",  # flanneld's subnet.env and net-conf.json
    # cilium-agent's state and API socket (/var/run/cilium/cilium.sock; /var/run is /run
    # here): the agent and cilium-cni, which containerd runs in the node, meet there.
    "/run/cilium",
)


def _ns_dir_private() -> None:
    """Persistent mount-namespace files must live on a private mount, or the kernel
    refuses the bind (it would create a propagation loop)."""
    d = paths.NS_DIR
    d.mkdir(parents=True, exist_ok=True)
    mounts = Path("/proc/self/mountinfo").read_text()
    if f" {d} " not in mounts:
        run(["mount", "--bind", str(d), str(d)], "bind the namespace dir")
    run(["mount", "--make-private", str(d)], "make the namespace dir private")


def make(state: State, node: str) -> None:
    _ns_dir_private()
    mnt, uts = paths.NS_DIR / f"{node}.mnt", paths.NS_DIR / f"{node}.uts"
    if is_mountpoint(mnt):
        return
    for p in PRIVATE_PATHS:
        if not Path(p).exists():
            Path(p).mkdir(parents=True)
            state.created_dirs.append(p)
    state.save()
    mnt.touch()
    uts.touch()
    binds = []
    for p in PRIVATE_PATHS:
        own = paths.node_dir(node) / "root" / p.lstrip("/")
        own.mkdir(parents=True, exist_ok=True)
        binds.append(f"mount --bind {own} {p}")
    # Private first so nothing the node mounts reaches the host; then shared
    # inside the node, as the kubelet expects for volume propagation.
    script = "; ".join([f"hostname {node}", *binds, "mount --make-rshared /"])
    r = subprocess.run(
        ["unshare", f"--mount={mnt}", f"--uts={uts}", "--propagation", "private",
         "sh", "-ec", script],
        capture_output=True, text=True, check=False,
    )
    if r.returncode != 0:
        raise LabError(f"creating the namespaces of {node} failed: {r.stderr.strip()}")


def is_mountpoint(f: Path) -> bool:
    return any(line.split()[4] == str(f) for line in Path("/proc/self/mountinfo").read_text().splitlines())



# Inside a node's mount namespace: every bpffs mounted there (cilium mounts one at
# /sys/fs/bpf, the pins of its maps and tcx links), deepest first. The namespace
# takes them when it goes, but only once nothing holds it (an `nsenter` shell
# someone left in the node would keep the datapath pinned): `down` does not wait
# for that. None there (another CNI, a second `down`): nothing to do.
UNMOUNT_BPFFS = "findmnt -rn -t bpf -o TARGET | sort -r | while read -r m; do umount -l \"$m\"; done; true"


def unmount_bpffs_in(mnt: Path) -> list[str]:
    return ["nsenter", f"--mount={mnt}", "--", "sh", "-c", UNMOUNT_BPFFS]


def remove_all() -> None:
    d = paths.NS_DIR
    if not d.exists():
        return
    for f in sorted(d.iterdir()):
        if is_mountpoint(f):
            if f.suffix == ".mnt":
                run(unmount_bpffs_in(f), f"unmount bpffs in {f.stem}", check=False)
            run(["umount", str(f)], f"unmount {f}", check=False)
    if is_mountpoint(d):
        run(["umount", str(d)], f"unmount {d}", check=False)


def remove_created_dirs(state: State) -> None:
    for p in sorted(state.created_dirs, key=len, reverse=True):
        try:
            Path(p).rmdir()
        except OSError:
            pass
