"""Diagnosis on the lab: break a layer, run a slice of the suite, read the diagnosis.

Each test injects one fault, runs a small -k slice of the east-west suite in a
subprocess with --junitxml, reads the "diagnosis" property of the failed
tests, and undoes its own fault in `finally`. Only its own: another run may
hold a different fault on the same lab, and `packetwalk lab heal` would undo
that one too. Root and a running lab are required.
"""

import os
import subprocess
from pathlib import Path

import pytest

from packetwalk.lab import cluster, faults
from packetwalk.lab.state import load
from packetwalk.waiting import wait_for
from tests.suiterun import run_suites

CLIENT_NODE, SERVER_NODE = "pw-worker", "pw-worker2"  # the suite's cross-node placement


def _lab_up() -> bool:
    try:
        return os.geteuid() == 0 and bool(load().procs)
    except Exception:  # noqa: BLE001 - no state file, unreadable: the lab is not up
        return False


pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not _lab_up(), reason="needs root and the lab up")]


def inject(name: str, node: str) -> None:
    """The lab holds one fault at a time: wait (bounded) for another run's to be healed."""
    wait_for(f"the lab's active faults {sorted(load().faults)} to be healed",
             lambda: not load().faults, timeout=180, interval=2)
    faults.inject(name, node)


def heal_only(name: str) -> None:
    """Undo one fault (faults.heal would undo every active one, others' included)."""
    state = load()
    info = state.faults.get(name)
    if info is None:
        return
    faults.FAULTS[name].heal(state, faults._node(state, info.get("node") or None))
    state = load()
    del state.faults[name]
    state.save()


def run_slice(tmp_path: Path, keyword: str, *extra: str) -> dict[str, dict]:
    """Run `-k keyword` of the east-west suite; {test name: diagnosis} of its failures."""
    return run_suites(tmp_path, "suites/east_west", extra=("-k", keyword, *extra)).diagnoses


def test_kube_proxy_broken_clusterip_fails_pod_ips_answer(tmp_path):
    inject("kube-proxy-broken", CLIENT_NODE)
    try:
        diagnoses = run_slice(tmp_path, "test_cluster_ip and not every and tcp")
    finally:
        heal_only("kube-proxy-broken")
    assert set(diagnoses) == {"test_cluster_ip[same-node-tcp]", "test_cluster_ip[cross-node-tcp]"}
    for diagnosis in diagnoses.values():
        assert diagnosis["verdict"].startswith("ClusterIP fails, pod IPs answer"), diagnosis
        assert any(line.startswith("pod IP ") and line.endswith(": OK")
                   for line in diagnosis["bisection"]), diagnosis


def test_cross_node_route_server_never_saw_the_packet(tmp_path):
    inject("cross-node-route", SERVER_NODE)
    try:
        diagnoses = run_slice(tmp_path, "test_pod_ip and cross-node-tcp", "--capture-packets")
    finally:
        heal_only("cross-node-route")
    diagnosis = diagnoses["test_pod_ip[cross-node-tcp]"]
    assert diagnosis["capture"] == "server never saw the packet", diagnosis
    assert diagnosis["verdict"].startswith("cross-node fails, same-node answers"), diagnosis
    # A pcap with no packet is its 24-byte header: the server side's, here.
    sizes = {Path(p).name: Path(p).stat().st_size for p in diagnosis["pcaps"]}
    assert diagnosis["packets"] and len(sizes) == 4 and max(sizes.values()) > 24, sizes


def test_return_path_drop_server_answered_client_never_got_it(tmp_path):
    # The server's answers (from its port 8080) dropped as they enter its node's stack:
    # raw PREROUTING, because kube-router keeps its own FORWARD jump, which accepts, first.
    wait_for("other faults to be healed", lambda: not load().faults, timeout=180, interval=2)
    cidrs = cluster.pod_cidrs()
    rule = ["PREROUTING", "-s", cidrs[SERVER_NODE], "-d", cidrs[CLIENT_NODE],
            "-p", "tcp", "--sport", "8080", "-j", "DROP"]
    iptables = ["ip", "netns", "exec", SERVER_NODE, "iptables", "-w", "-t", "raw"]
    subprocess.run([*iptables, "-I", *rule], check=True)
    try:
        diagnoses = run_slice(tmp_path, "test_pod_ip and cross-node-tcp", "--capture-packets")
    finally:
        subprocess.run([*iptables, "-D", *rule], check=True)
    diagnosis = diagnoses["test_pod_ip[cross-node-tcp]"]
    assert diagnosis["capture"] == "server answered, client never got it", diagnosis
