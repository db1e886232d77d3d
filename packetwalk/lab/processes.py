"""Start the lab's daemons inside a node's namespaces, and stop them by pid."""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import cgroups, paths
from .errors import LabError
from .state import Proc, State


def starttime(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(p: Proc) -> bool:
    return starttime(p.pid) == p.starttime and not _zombie(p.pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def in_netns(ns: str) -> list[str]:
    """The prefix that runs a command in a lab network namespace only (host filesystem)."""
    return ["nsenter", f"--net=/run/netns/{ns}", "--"]


def as_node_process(node: str) -> list[str]:
    """The prefix that runs a one-off command as one of the node's own host processes:
    in its network namespace and, while the node runs, in its cgroup2 directory beside
    its daemons (start()). A CNI's socket hooks attached to the node's cgroup2 root
    (cilium's socket LB: a node's ClusterIP traffic) act on it as on a real node's."""
    procs = cgroups.UNIFIED / cgroups.node_path(node).strip("/") / "lab" / "cgroup.procs"
    if not procs.exists():  # none made here: a probe of a node that is down leaves nothing
        return in_netns(node)
    return ["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", str(procs), *in_netns(node)]


def enter(node: str) -> list[str]:
    """The nsenter prefix that runs a command as if on the node."""
    ns = paths.NS_DIR
    return [
        "nsenter", f"--mount={ns / (node + '.mnt')}", f"--uts={ns / (node + '.uts')}",
        f"--net=/run/netns/{node}", "--",
    ]


def start(state: State, node: str, name: str, argv: list[str], netns_only: bool = False) -> Proc:
    paths.LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = paths.LOG_DIR / f"{node}-{name}.log"
    prefix = in_netns(node) if netns_only else enter(node)
    group = f"{cgroups.node_path(node)}/lab"
    cgroups.ensure(group)

    def into_cgroup() -> None:
        # Before exec, so every child (containerd's shims, containers) is below it too.
        cgroups.join(group, os.getpid())
        cgroups.join_unified(group, os.getpid())

    with log.open("ab") as out:
        child = subprocess.Popen(
            prefix + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            # preexec_fn is unsafe with threads; `up` starts daemons from one thread.
            start_new_session=True, preexec_fn=into_cgroup, close_fds=True,  # noqa: PLW1509
        )
    proc = Proc(name, node, child.pid, starttime(child.pid) or 0, argv)
    state.procs.append(proc)
    state.save()
    return proc


def check_running(p: Proc, grace: float = 0.0) -> None:
    time.sleep(grace)
    if not alive(p):
        log = paths.LOG_DIR / f"{p.node}-{p.name}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise LabError(f"{p.name} on {p.node} exited: {tail[0] if tail else '(no output)'} (log: {log})")


def stop(procs: list[Proc], timeout: float = 10.0) -> None:
    live = [p for p in procs if alive(p)]
    for p in live:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in live) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in live:
        if alive(p):
            os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in live) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in live:
        try:
            os.waitpid(p.pid, 0)  # reap, when `up` ran in this same process
        except ChildProcessError:
            pass


def stop_component(state: State, name: str, node: str) -> None:
    """Stop one component on one node and forget it (a fault does this; heal starts it again)."""
    procs = [p for p in state.procs if p.name == name and p.node == node]
    stop(procs)
    state.procs = [p for p in state.procs if p not in procs]
    state.save()


def run(argv: list[str], what: str, timeout: float = 60, check: bool = True) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: timed out after {timeout:.0f}s ({' '.join(argv[:6])} ...)") from None
    if check and r.returncode != 0:
        err = (r.stderr or r.stdout).strip().splitlines()
        raise LabError(f"{what} failed: {err[-1] if err else 'exit ' + str(r.returncode)}")
    return r.stdout
