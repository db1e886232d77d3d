"""cgroup v1 hierarchies for the lab's nodes: /packetwalk/<node> in every controller.

This host is hybrid v1 with child cgroups already in use, so v2 is not an
option. Each node's kubelet gets cgroupRoot /packetwalk/<node>; the lab's
daemons for that node live in /packetwalk/<node>/lab. Every container, shim
and daemon of a node therefore sits below one directory, which is how `down`
finds and kills them all.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from .errors import LabError

ROOT = Path("/sys/fs/cgroup")
TOP = "packetwalk"
# cgroup2, in this host's hybrid layout: no controllers, but where BPF programs attach
# to cgroups. runc (hybrid mode) puts each container there at its v1 path
# (/packetwalk/<node>/kubepods/...), and start() puts the lab's daemons there at
# /packetwalk/<node>/lab as in v1 (join_unified): a node's host processes and pods
# sit below /packetwalk/<node>, as a real node's sit below its cgroup2 root. cilium
# binds that directory as its --cgroup-root: its socket LB reaches that node's
# processes and pods, no other node's, nothing else on the machine.
UNIFIED = ROOT / "unified"
# The kubelet refuses to start on v1 without these (hugetlb is compiled in but
# not mounted here; kubernetes#58296).
REQUIRED = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "hugetlb")


def hierarchies() -> list[Path]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup":
            found.append(Path(fields[4]))
    return found


def ensure_hugetlb() -> bool:
    """Mount the hugetlb hierarchy if missing; True when we mounted it."""
    target = ROOT / "hugetlb"
    if target in hierarchies():
        return False
    if "hugetlb" not in Path("/proc/cgroups").read_text():
        raise LabError("the kernel has no hugetlb cgroup controller, which the kubelet needs on cgroup v1")
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)], check=True)
    return True


def check_v1() -> None:
    mounted = {h.name for h in hierarchies()}
    missing = [c for c in REQUIRED if c not in mounted and c != "hugetlb"]
    if missing:
        raise LabError(f"cgroup v1 controllers not mounted: {', '.join(missing)}")


def _copy_cpuset(d: Path) -> None:
    # A new v1 cpuset cgroup starts empty and refuses tasks (kind#1969).
    for f in ("cpuset.cpus", "cpuset.mems"):
        if not (d / f).read_text().strip():
            (d / f).write_text((d.parent / f).read_text())


def ensure(rel: str) -> None:
    for h in hierarchies():
        d = h
        for part in rel.strip("/").split("/"):
            d = d / part
            d.mkdir(exist_ok=True)
            if h.name == "cpuset":
                _copy_cpuset(d)


def join(rel: str, pid: int) -> None:
    for h in hierarchies():
        (h / rel.strip("/") / "cgroup.procs").write_text(str(pid))


def join_unified(rel: str, pid: int, root: Path = UNIFIED) -> None:
    """pid into rel in cgroup2 as well, made if missing; nothing on a host without it."""
    if not root.is_dir():
        return
    d = root / rel.strip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.procs").write_text(str(pid))


def node_path(node: str) -> str:
    return f"/{TOP}/{node}"


def pids_below(rel: str) -> set[int]:
    found: set[int] = set()
    for h in hierarchies():
        base = h / rel.strip("/")
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            if "cgroup.procs" in files:
                text = (Path(dirpath) / "cgroup.procs").read_text()
                found.update(int(p) for p in text.split())
    return found


def kill_all(rel: str, timeout: float = 10.0) -> None:
    """SIGKILL everything below rel until nothing is left (shims respawn nothing)."""
    deadline = time.monotonic() + timeout
    while pids := pids_below(rel):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise LabError(f"processes in cgroup {rel} survived SIGKILL: {sorted(pids)[:10]}")
        time.sleep(0.2)


def _rmdir_tree(base: Path, strict: bool = True) -> None:
    """base and the directories below it, deepest first. A just-killed task may still
    be exiting: each gets a second try, after which `strict` raises, else leaves it."""
    if not base.is_dir():
        return
    for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            time.sleep(0.2)
            try:
                os.rmdir(dirpath)
            except OSError:
                if strict:
                    raise


def remove(rel: str) -> None:
    for h in hierarchies():
        _rmdir_tree(h / rel.strip("/"))


def unified_node_dir(node: str, root: Path = UNIFIED) -> Path:
    return root / TOP / node


def ensure_unified(node: str, root: Path = UNIFIED) -> Path:
    if not root.is_dir():
        raise LabError(f"no cgroup2 at {root}: this CNI needs the hybrid layout's unified hierarchy")
    d = unified_node_dir(node, root)
    d.mkdir(parents=True, exist_ok=True)
    return d


def remove_unified(root: Path = UNIFIED) -> None:
    """The lab's cgroup2 directories (runc's for the pods, start()'s for the daemons),
    deepest first, once `down` has killed every process in them (the same processes
    as in v1), so rmdir takes each. No-op when there are none: `down` may run twice."""
    # A directory someone else put a process in is left, as `down` leaves the rest.
    _rmdir_tree(root / TOP, strict=False)
