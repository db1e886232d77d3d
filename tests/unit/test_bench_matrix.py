"""bench/matrix.py's pure parts: choosing networks, reading `lab status`, judging a
fault, drawing the table. Bad input is one line and exit 2 before anything runs."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from packetwalk.lab import faults
from packetwalk.lab.cni import cni_named, names
from packetwalk.stalls import PodFacts, Stall, pods_stall
from tests.selfcheck.expected import EXPECTED, EXPECTED_AT_START, EXPECTED_FLAKY, stop_mismatch
from tests.suiterun import SuiteRun

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "matrix.py"
_spec = importlib.util.spec_from_file_location("bench_matrix", SCRIPT)
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

STATUS = """Kubernetes v1.37.2, etcd v3.7.3, containerd v2.4.2, CoreDNS v1.14.6
CNI: flannel (flanneld v0.28.4, kube-router v2.1.0)
kube-proxy: nftables mode

network, as the cluster shows it:
  CNI: flannel (vxlan); NetworkPolicy by kube-router (v2.1.0); seen on the nodes, no CNI agent pod
  kube-proxy mode: nftables (kube-proxy's /proxyMode on pw-control-plane, pw-worker, pw-worker2)
  pod MTU: 1450 (the pods' veths on pw-worker)

kubeconfig: /var/lib/packetwalk/kubeconfig
"""


def run_of(failed=(), errors=None) -> SuiteRun:
    """`errors`: errored id -> its text."""
    errors = errors or {}
    return SuiteRun({"test_pod_ip[same-node-tcp]"}, set(failed), set(errors), {}, "", "",
                    error_texts=dict(errors))


def test_pick():
    assert matrix.pick(None, ["a", "b"], "CNI") == ["a", "b"]
    assert matrix.pick("b, a", ["a", "b"], "CNI") == ["b", "a"]
    for bad in ("c", "a,c", "", ","):
        with pytest.raises(ValueError, match="unknown CNI"):
            matrix.pick(bad, ["a", "b"], "CNI")


def test_status_facts_are_the_clusters_lines():
    facts = matrix.status_facts(STATUS)
    assert facts["CNI"].startswith("flannel (vxlan)")  # not the lab's own unindented line
    assert matrix.first_word(facts["pod MTU"]) == "1450"
    assert matrix.first_word(facts["kube-proxy mode"]) == "nftables"
    assert matrix.first_word(None) == "unknown"
    assert matrix.status_facts("the lab is down") == {}


def test_localized_exactly_with_either_way_ids_aside():
    expected = EXPECTED["cross-node-route"]
    assert expected.either_way
    blocked = {test: f"blocked: the {layer.name} across nodes fails (...)"
               for test, layer in expected.blocked.items()}
    assert matrix.not_localized(expected, run_of(expected.failing, blocked)) == ""
    assert matrix.not_localized(
        expected, run_of(expected.failing | expected.either_way, blocked)) == ""
    missed = min(expected.failing)
    assert "missed 1" in matrix.not_localized(expected, run_of(expected.failing - {missed},
                                                               blocked))
    blamed = matrix.not_localized(expected, run_of(expected.failing | {"test_pod_ip[same-node-tcp]"},
                                                   blocked))
    assert "wrongly blamed 1 (test_pod_ip[same-node-tcp])" in blamed
    assert "errors 1" in matrix.not_localized(expected, run_of(expected.failing,
                                                               {**blocked, "x": "ProbeError"}))
    assert f"not blocked {len(blocked)}" in matrix.not_localized(expected,
                                                                 run_of(expected.failing))
    assert matrix.not_localized(expected, None) == "the run timed out"


CILIUM_CNI_REFUSED = ("FailedCreatePodSandBox", ('failed to setup network for sandbox "d480": '
                      'plugin type="cilium-cni" failed (add): unable to connect to Cilium agent'))
# The one line each control-plane fault's run ends with, as packetwalk/stalls.py words
# the stall and pytest prints the plugin's UsageError.
STOPPED = {
    "controller-manager-down": Stall(
        "the creation of ServiceAccount pw-0123ab/default", 30,
        "creating pod pw-0123ab/server-pw-worker was refused: ...",
        "kube-controller-manager (its serviceaccount controller)"),
    "scheduler-down": Stall("the scheduling of the run's pods", 60,
                            "none of the 6 pods has a node, ...", "kube-scheduler"),
    # Worded by stalls.py itself: cilium-cni's refusal on pw-worker2, pw-worker's pods up.
    "cilium-agent-down": pods_stall([
        PodFacts("client-pw-worker", "pw-0123ab", "pw-worker", ready=True, phase="Running",
                 node_name="pw-worker"),
        PodFacts("server-pw-worker2", "pw-0123ab", "pw-worker2", phase="Pending",
                 node_name="pw-worker2", scheduled=("True", ""), events=(CILIUM_CNI_REFUSED,))],
        60),
}


def stopped_line(fault: str) -> str:
    return f"ERROR: packetwalk: {STOPPED[fault]}\n"


@pytest.mark.parametrize("fault", list(matrix.STOPS_AT_START))
def test_a_run_stopped_at_session_start_as_expected_matches(fault):
    assert set(STOPPED) == set(matrix.STOPS_AT_START)
    assert stop_mismatch(matrix.STOPS_AT_START[fault], 4, "\n", "\n" + stopped_line(fault)) == ""


def test_a_run_stopped_otherwise_says_what_differed():
    expected = EXPECTED_AT_START["controller-manager-down"]
    line = stopped_line("controller-manager-down")
    assert stop_mismatch(expected, 1, "", line) == "exit 1, not 4"
    # The scheduler's stall under the controller-manager's fault: both words missed.
    assert stop_mismatch(expected, 4, "", stopped_line("scheduler-down")) == (
        "the line does not name ServiceAccount; "
        "the line does not say 'likely kube-controller-manager'")
    crashed = "Traceback (most recent call last):\n  File ...\nKeyError: 'x'\n"
    assert stop_mismatch(expected, 4, "", crashed) == "3 stderr lines, not 1; a traceback"
    # A run that got past session start: tests ran, and it said nothing.
    assert stop_mismatch(expected, 1, "3 failed, 87 passed in 40.1s\n", "") == (
        "exit 1, not 4; 0 stderr lines, not 1; passed/failed counts on stdout")
    assert stop_mismatch(expected, 4, "", line + line) == "2 stderr lines, not 1"


def test_the_matrix_judges_a_stopped_run_by_the_same_rule():
    expected = EXPECTED_AT_START["scheduler-down"]
    done = subprocess.CompletedProcess([], 4, "\n", stopped_line("scheduler-down"))
    assert matrix.not_stopped(expected, done) == ""
    assert matrix.not_stopped(expected, subprocess.CompletedProcess([], 0, "", "")) == (
        "exit 0, not 4; 0 stderr lines, not 1")
    assert matrix.not_stopped(expected, None) == "the run timed out"


# Supported faults with no expectation the matrix can judge, each for a reason: a gap
# named here, never a silent one.
NOT_YET_EXPECTED: set[str] = set()


def test_no_supported_fault_of_any_cni_is_left_without_an_expectation():
    left = {}
    for cni in names():
        supported = cni_named(cni).faults_supported
        left[cni] = (supported - set(EXPECTED) - set(EXPECTED_FLAKY) - set(matrix.STOPS_AT_START)
                     - faults.DUAL_ONLY_FAULTS)
        assert matrix.unexpected(supported) == sorted(left[cni]), cni
        assert set(EXPECTED_AT_START) <= supported, cni  # every lab has a control plane
    # Exactly the named gaps: one closed is taken off the list, a new one is seen.
    assert set().union(*left.values()) == NOT_YET_EXPECTED, left


def test_table_names_what_was_not_localized():
    net = matrix.Network("flannel", "nftables", "flanneld v0.28.4", up_seconds=74.2,
                         facts=matrix.status_facts(STATUS), runs=5, counts=(1, 0, 0),
                         walls=[100.0, 120.0, 110.0], faults={"dns-down": "", "udp-dropped": "missed 1"},
                         false_failures={"test_mtu[cross-node-udp]": 1})
    down = matrix.Network("kube-router", "iptables", "kube-router v2.1.0", problem="lab up failed: x",
                          up_seconds=12.0)
    table = matrix.render([net, down], markdown=True).splitlines()
    assert table[0].startswith("| CNI | version | proxy mode | pod MTU |")
    assert table[2] == ("| flannel | flanneld v0.28.4 | nftables | 1450 | 1/0/0 | 1 in 5 | "
                        "1/2 (not: udp-dropped) | 110 s | 74 s |")
    assert table[3].startswith("| kube-router | kube-router v2.1.0 | iptables | - |")
    text = "\n".join(table)
    assert "flannel/nftables: false failure test_mtu[cross-node-udp] in 1 of 5 runs" in text
    assert "flannel/nftables: udp-dropped not localized: missed 1" in text
    assert "kube-router/iptables: not measured: lab up failed: x" in text
    assert not matrix.healthy(net) and not matrix.healthy(down)


def test_mode_the_cluster_does_not_confirm_is_shown():
    net = matrix.Network("bridge", "iptables", facts=matrix.status_facts(STATUS))
    assert matrix.mode_cell(net) == "iptables (cluster: nftables)"


def test_recorded_rows_make_the_table_without_the_lab(tmp_path):
    """--record's lines, read back by --from: the latest row of each network, in the
    matrix's order; the table and exit code as if just measured."""
    older = matrix.Network("flannel", "iptables", "flanneld v0.28.4", up_seconds=40.0, runs=1,
                           walls=[50.0], counts=(80, 3, 10), faults={"dns-down": "missed 1"},
                           measured="2026-11-29, commit aaaaaaa")
    newer = matrix.Network("flannel", "iptables", "flanneld v0.28.4", up_seconds=41.0, runs=5,
                           walls=[35.0, 36.0, 34.0], counts=(90, 3, 0), facts=matrix.status_facts(
                               STATUS), faults={"dns-down": "", "flanneld-down": ""},
                           fault_walls={"dns-down": 47.2, "flanneld-down": 88.0},
                           measured="2026-11-30, commit bbbbbbb")
    bridge = matrix.Network("bridge", "iptables", "kube-router v2.1.0", up_seconds=29.0, runs=5,
                            walls=[40.0], counts=(90, 3, 0), faults={})
    rows = tmp_path / "matrix.jsonl"
    rows.write_text("".join(n.to_json() + "\n" for n in (older, bridge, newer)))
    assert matrix.Network.from_json(newer.to_json()) == newer
    done = subprocess.run([sys.executable, str(SCRIPT), "--from", str(rows), "--markdown"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert table[2].startswith("| bridge | kube-router v2.1.0 | iptables | unknown | 90/3/0 | 0 in 5 | 0/0 |")
    assert table[3] == ("| flannel | flanneld v0.28.4 | iptables (cluster: nftables) | 1450 | "
                        "90/3/0 | 0 in 5 | 2/2 | 35 s | 41 s |")
    assert "- flannel/iptables: each fault's run: dns-down 47 s, flanneld-down 88 s" in table
    assert "- flannel/iptables: measured 2026-11-30, commit bbbbbbb" in table
    # A --faults row adds its faults to the whole row before it, not replacing it.
    added = matrix.Network("flannel", "iptables", faults={"udp-lossy": "no test_dns_* id passed"},
                           fault_walls={"udp-lossy": 120.4}, only_faults=["udp-lossy"],
                           measured="2026-12-01, commit ccccccc")
    rows.write_text(rows.read_text() + added.to_json() + "\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--from", str(rows), "--markdown"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr  # udp-lossy was not localized
    table = done.stdout.splitlines()
    assert table[3] == ("| flannel | flanneld v0.28.4 | iptables (cluster: nftables) | 1450 | "
                        "90/3/0 | 0 in 5 | 2/3 (not: udp-lossy) | 35 s | 41 s |")
    assert ("- flannel/iptables: measured 2026-11-30, commit bbbbbbb; udp-lossy 2026-12-01, "
            "commit ccccccc") in table
    assert "- flannel/iptables: udp-lossy not localized: no test_dns_* id passed" in table
    # A --faults row read the network's facts again: the table shows the newer reading.
    again = matrix.Network("flannel", "iptables", facts={**matrix.status_facts(STATUS), "pod MTU": "1400 (the pods' veths on x)"},
                           faults={}, only_faults=["udp-lossy"], measured="2026-12-02, commit ddddddd")
    rows.write_text(rows.read_text() + again.to_json() + "\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--from", str(rows), "--markdown"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert "| iptables (cluster: nftables) | 1400 |" in done.stdout.splitlines()[3], done.stdout
    rows.write_text(rows.read_text() + "{not json\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--from", str(rows)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.startswith(f"matrix: --from {rows}:6: "), done.stderr


def test_a_cni_that_replaces_kube_proxy_is_one_network_with_its_policy_timeout():
    nets = matrix.networks(["bridge", "cilium"], ["iptables", "nftables"])
    assert [n.name for n in nets] == ["bridge/iptables", "bridge/nftables", "cilium/none"]
    bridge, cilium = nets[0], nets[-1]
    assert cilium.policy_timeout == cni_named("cilium").policy_timeout > 20  # past the default
    assert bridge.policy_timeout is None
    # The CNI's own timeout on every run; else the default healthy, the self-check's under a fault.
    assert matrix.policy_args(cilium, under_fault=False) == ("--policy-timeout", "45")
    assert matrix.policy_args(cilium, under_fault=True) == ("--policy-timeout", "45")
    assert matrix.policy_args(bridge, under_fault=False) == ()
    assert matrix.policy_args(bridge, under_fault=True) == ("--policy-timeout", "8")
    cilium.runs, cilium.counts = 1, (90, 3, 0)
    assert "- cilium/none: run with --policy-timeout 45 (" in matrix.render([cilium], markdown=True)
    assert matrix.Network.from_json(cilium.to_json()) == cilium


def test_faults_picks_what_runs_in_order():
    assert matrix.applicable("flannel", ["scheduler-down", "udp-lossy"]) == ["udp-lossy", "scheduler-down"]
    assert "udp-lossy" in matrix.applicable("bridge") and "flanneld-down" not in matrix.applicable("bridge")
    assert matrix.applicable("bridge")[-2:] == list(EXPECTED_AT_START)


@pytest.mark.parametrize("argv", [["--cni", "calico"], ["--proxy-mode", "ipvs"], ["--runs", "0"],
                                  ["--faults", "no-such-fault"], ["--faults", "dns-down", "--no-faults"],
                                  ["--faults", "dns-down", "--runs", "-1"],
                                  ["--runs", "x"], ["--bogus"], ["--from", "no-such.jsonl"],
                                  ["--record", "no-such-dir/m.jsonl"]])
def test_bad_input_is_one_line_and_exit_2(argv, tmp_path):
    # Every argv here is refused before the root check: none may reach the lab.
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
