"""`up` is idempotent (also after a start that died half-way), `--workers`
changes the cluster, and `down` leaves the host as it was. Runs last (see conftest).
"""

import os
import subprocess
import sys
import time
from ipaddress import ip_network
from pathlib import Path

from packetwalk.lab import cgroups, cluster, network, nodes, paths, processes, state, topology
from tests.suiterun import run_suites

from .conftest import eventually, hand_on, kubectl_json


def test_second_up_keeps_the_healthy_lab(lab):
    before = {p.name + p.node: p.pid for p in state.load().procs}
    messages = []
    start = time.monotonic()
    cluster.up(workers=state.load().workers, log=messages.append)
    assert any("already up" in m for m in messages), messages
    assert {p.name + p.node: p.pid for p in state.load().procs} == before
    assert time.monotonic() - start < 60


def _executables() -> dict[int, str]:
    """Every running process's executable, by pid."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            found[int(proc.name)] = os.readlink(proc / "exe") if proc.name.isdigit() else ""
        except (OSError, ValueError):
            continue
    return found


def _lab_processes() -> set[int]:
    """Pids of the lab's own binaries now running (not the shims or containers)."""
    return {pid for pid, exe in _executables().items()
            if exe.startswith(str(paths.BIN_DIR)) and "containerd-shim" not in exe}


def test_up_after_a_start_killed_half_way_ends_with_one_healthy_lab(lab):
    cluster.down(log=lambda m: None)
    half = subprocess.Popen([sys.executable, "-m", "packetwalk.cli", "lab", "up"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    # Kill it once the control plane's first components run, before any node joins.
    started, _ = eventually(lambda: (len(state.load().procs) >= 2, ""), timeout=60, every=0.2)
    half.kill()
    half.wait(timeout=10)
    assert started, "the interrupted start never got as far as the control plane"
    assert not cluster.healthy(state.load())

    messages = []
    cluster.up(workers=2, log=messages.append)
    assert any("clearing a previous lab" in m for m in messages), messages
    now = state.load()
    assert cluster.healthy(now)
    # The outside host is python3 run as nobody, not one of the lab's binaries.
    started_binaries = {p.pid for p in now.procs
                        if _executables().get(p.pid, "").startswith(str(paths.BIN_DIR))}
    assert len(started_binaries) == len(now.procs) - 1, now.procs
    assert _lab_processes() == started_binaries, "processes of the killed start survived"
    assert len(kubectl_json("get", "nodes")["items"]) == 3


def test_a_single_worker_lab_skips_cross_node_tests_with_their_reason(lab, tmp_path):
    try:
        cluster.up(workers=1, log=lambda m: None)
        names = [n["metadata"]["name"] for n in kubectl_json("get", "nodes")["items"]]
        assert sorted(names) == ["pw-control-plane", "pw-worker"]
        # NetworkPolicy's cells are same-node here, and its cases take most of a run.
        run = run_suites(tmp_path, "suites/east_west", extra=("--no-diagnose", "-k", "not network_policy"))
        assert not run.failed and not run.errors, run.output[-3000:]
        cross = {tid: why for tid, why in run.skipped.items() if "cross-node" in tid}
        assert cross and all("needs 2 schedulable nodes" in why for why in cross.values()), cross
        assert not any("cross-node" in tid for tid in run.passed), "cross-node ran on one node"
        assert any("same-node" in tid for tid in run.passed), run.output[-3000:]
    finally:
        cluster.up(workers=2, log=lambda m: None)  # the rest of the tests need two workers


def _leftovers(procs: list[state.Proc]) -> list[str]:
    found = []
    netns = network.ip("netns", "list", check=False)
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith("pw-")]
    found += [f"link {d.name}" for d in Path("/sys/class/net").iterdir()
              if d.name.startswith("pwv") or d.name == topology.BRIDGE]
    for line in network.ip("route", "show", "table", "all", check=False).splitlines():
        words = line.split()
        dst = words[1] if words[0] in ("blackhole", "local", "broadcast", "unreachable") else words[0]
        try:
            net = ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == 4 and any(net.overlaps(r) for r in topology.lab_ranges()):
            found.append(f"route {line}")
    # A dual-stack lab's: its ranges and the host's blackholes around them.
    for line in network.ip("-6", "route", "show", "table", "all", check=False).splitlines():
        words = line.split()
        dst = words[1] if words and words[0] in ("blackhole", "local", "anycast", "unreachable") else (
            words[0] if words else "")
        try:
            net = ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == 6 and any(net.overlaps(r) for r in (topology.ULA, topology.DOCUMENTATION6)):
            found.append(f"route {line}")
    found += [f"process {p.pid} ({p.node} {p.name})" for p in procs if processes.alive(p)]
    found += [f"process {pid} ({exe})" for pid, exe in _executables().items()
              if exe.startswith(str(paths.BIN_DIR)) or "containerd-shim" in exe]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {m}" for m in (str(paths.STATE_ROOT), *nodes.PRIVATE_PATHS) if f" {m}" in mounts]
    found += [f"cgroup {h / cgroups.TOP}" for h in cgroups.hierarchies() if (h / cgroups.TOP).exists()]
    found += [f"file {f}" for f in (paths.RUN_DIR, paths.KUBECONFIG) if f.exists()]
    iptables = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    found += ["host iptables KUBE- chains"] if "KUBE-" in iptables else []
    return found


def test_down_leaves_nothing(lab, request):
    procs = state.load().procs
    assert procs
    cluster.down(log=lambda m: None)
    try:
        assert _leftovers(procs) == []
        cluster.down(log=lambda m: None)  # safe when nothing is up
    finally:
        hand_on(request.config)  # the default lab back, unless a lab switch runs next
