"""The suite leaves nothing behind in the cluster: after a run, after Ctrl-C in
the middle of deploying, and (through the next run's sweep) after a kill -9.
`--keep` is the one way to leave the namespaces, and the sweep respects it.

Each test drives a real, small slice of the east-west suite on the lab.
"""

import os
import signal
import subprocess
import time

import pytest

from packetwalk.runs import ANNOTATION_KEEP, MANAGED_BY
from tests.suiterun import ROOT, pytest_argv

from .conftest import eventually, kubectl, suite_namespaces

MANAGED = f"{MANAGED_BY}=packetwalk"
SLICE = ("suites/east_west", "-n", "2", "-k", "test_pod_ip and same-node-tcp", "--no-diagnose",
         "-q")


def gone(names) -> tuple[bool, str]:
    left = sorted(set(names) & set(suite_namespaces()))
    return not left, ", ".join(left)


@pytest.fixture
def clean_slate(lab):
    """No run's namespace before the test, and none after it, whatever it did."""
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)
    yield
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)


def start_slice(*extra: str) -> subprocess.Popen:
    # Its own process group, so a signal reaches pytest and its children the way
    # a terminal's Ctrl-C does.
    return subprocess.Popen(pytest_argv(*SLICE, *extra), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for_namespaces(proc: subprocess.Popen, timeout: float = 60) -> list[str]:
    def made() -> tuple[bool, list[str]]:
        names = list(suite_namespaces())
        return bool(names) or proc.poll() is not None, names

    _, names = eventually(made, timeout=timeout, every=0.5)
    if not names:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the run made no namespace (within {timeout:.0f}s, or before it "
                    f"ended):\n{proc.communicate()[0][-3000:]}")
    return names


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def test_a_run_leaves_no_object_behind(clean_slate):
    """By default the run deletes its namespaces and returns; the cluster removes them."""
    code, out = finish(start_slice())
    assert code == 0, out[-3000:]
    assert "pytest does not wait (--wait-cleanup waits)" in out, out[-3000:]
    gone, left = eventually(lambda: (not suite_namespaces(), suite_namespaces()), timeout=60)
    assert gone, left


def test_wait_cleanup_returns_when_the_namespaces_are_gone(clean_slate):
    code, out = finish(start_slice("--wait-cleanup"))
    assert code == 0, out[-3000:]
    assert "deleted the namespaces of run" in out, out[-3000:]
    assert suite_namespaces() == {}


# An image no node can pull keeps the deploy waiting (the kubelet needs tens of
# seconds for its first ErrImagePull), so Ctrl-C surely lands while deploying: a
# healthy deploy now takes about 4 s, and the run can end before the signal does.
NEVER_READY = "--image=registry.k8s.io/e2e-test-images/agnhost:0.0-does-not-exist"


def test_ctrl_c_while_deploying_still_cleans_up(clean_slate, sigint):
    # `sigint`: the run under test inherits SIGINT as a terminal gives it, also when
    # this process was started with it ignored (a background job of a shell).
    proc = start_slice(NEVER_READY)
    names = wait_for_namespaces(proc)
    os.killpg(proc.pid, signal.SIGINT)
    code, out = finish(proc)
    assert code == pytest.ExitCode.INTERRUPTED, out[-3000:]
    # Pods still pulling take the kubelet's pull timeout to terminate.
    ok, left = eventually(lambda: gone(names), timeout=180, every=3)
    assert ok, f"left after Ctrl-C: {left}\n{out[-3000:]}"


def test_a_killed_runs_namespaces_are_swept_by_the_next_run(clean_slate):
    proc = start_slice()
    names = wait_for_namespaces(proc)
    time.sleep(2)  # let it write its pid and heartbeat
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert set(names) <= set(suite_namespaces()), "kill -9 cannot clean up; the sweep must"
    code, out = finish(start_slice())
    assert code == 0 and "swept namespaces of dead runs" in out, out[-3000:]
    ok, left = eventually(lambda: gone(names), timeout=60)
    assert ok, f"not swept: {left}"


def test_keep_leaves_the_namespaces_and_the_sweep_spares_them(clean_slate):
    code, out = finish(start_slice("--keep"))
    assert code == 0, out[-3000:]
    kept = suite_namespaces()
    # main and peer: the slice (test_pod_ip, --no-diagnose) needs no hostNetwork pods,
    # so their privileged namespace is not made at all (selection.py).
    assert len(kept) == 2 and all(a.get(ANNOTATION_KEEP) == "true" for a in kept.values()), kept
    assert not [name for name in kept if name.endswith("-host")], kept
    code, out = finish(start_slice("--wait-cleanup"))
    assert code == 0 and "swept" not in out, out[-3000:]
    assert set(kept) == set(suite_namespaces())
