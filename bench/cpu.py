"""Where a run's CPU went on this machine: the lab's components and packetwalk's own.

    python3 bench/cpu.py -- COMMAND [ARG ...]

runs COMMAND (e.g. `python3 -m pytest suites/east_west -n auto`) and prints its wall
time and whose CPU it used; bench/versus_e2e.py prints the same for each selection.

The lab's nodes are namespaces of this one machine, so /proc sees every process of
the cluster. A run's CPU is read as:
- the machine's busy CPU-seconds (/proc/stat), all of it;
- packetwalk's own: the pytest processes the bench started (RUSAGE_CHILDREN);
- each long-lived lab component (its own time and its reaped children's, e.g. the
  iptables and ipset commands a policy agent runs), from /proc/<pid>/stat, for the
  processes alive both before and after the run;
- the rest: the run's pods (their shims come and go with the pods), the kernel,
  and anything else, as the difference.

Read on a 2-CPU machine, it tells whether a selection is bound by the CPU and by
whose: a target below the busy CPU-seconds divided by the CPUs cannot be met by
the suite alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
# The lab's agents, by executable name (the `kube` binary by its first argument).
COMPONENTS = {
    "kube-apiserver": "API server", "etcd": "etcd", "kubelet": "kubelets",
    "kube-proxy": "kube-proxy", "kube-controller-manager": "controller-manager",
    "kube-scheduler": "scheduler", "containerd": "containerd",
    "kube-router": "CNI and policy agents", "flanneld": "CNI and policy agents",
    "calico-node": "CNI and policy agents", "cilium-agent": "CNI and policy agents",
    "coredns": "CoreDNS",
}


def _component(cmdline: list[str]) -> str | None:
    if not cmdline or not cmdline[0]:
        return None
    name = Path(cmdline[0]).name
    if name == "kube" and len(cmdline) > 1:
        name = cmdline[1]
    return COMPONENTS.get(name)


def _processes() -> dict[int, tuple[str, int]]:
    """{pid: (component, own + reaped children's clock ticks)} of the lab's agents."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            component = _component(cmdline)
            if component is None:
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry.name)] = (component, sum(int(f) for f in fields[11:15]))
    return found


def _machine() -> tuple[int, int]:
    """(all, idle) clock ticks of the machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


@dataclass
class Snapshot:
    processes: dict[int, tuple[str, int]]
    machine: tuple[int, int]
    children: float


def snapshot() -> Snapshot:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(_processes(), _machine(), usage.ru_utime + usage.ru_stime)


def spent(before: Snapshot, after: Snapshot, command: str = "packetwalk") -> dict[str, float]:
    """CPU-seconds between two snapshots: "busy" (the machine), `command` (the processes
    this one started and waited for), each component, and "pods, kernel and the rest"."""
    busy = ((after.machine[0] - before.machine[0]) - (after.machine[1] - before.machine[1])) / TICK
    figures = {"busy": busy, command: after.children - before.children}
    for pid, (component, ticks) in after.processes.items():
        earlier = before.processes.get(pid)
        if earlier is not None and earlier[0] == component:
            figures[component] = figures.get(component, 0.0) + (ticks - earlier[1]) / TICK
    counted = sum(v for k, v in figures.items() if k != "busy")
    figures["pods, kernel and the rest"] = max(0.0, busy - counted)
    return figures


def words(figures: dict[str, float], wall: float) -> str:
    """One line: the machine's busy share, then each part, largest first."""
    busy = figures["busy"]
    cpus = os.cpu_count() or 1
    parts = sorted(((k, v) for k, v in figures.items() if k != "busy" and v >= 0.5),
                   key=lambda kv: -kv[1])
    return (f"CPU: {busy:.0f} cpu-s busy of {wall * cpus:.0f} ({cpus} CPUs): "
            + ", ".join(f"{k} {v:.0f}" for k, v in parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to measure")
    command = parser.parse_args().command
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        parser.error("give the command to measure after --")
    before, started = snapshot(), time.monotonic()
    try:
        code = subprocess.run(command, check=False).returncode
    except OSError as exc:
        parser.error(f"{command[0]}: {exc.strerror}")
    wall = time.monotonic() - started
    print(f"wall {wall:.1f}s, exit {code}; {words(spent(before, snapshot(), Path(command[0]).name), wall)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
