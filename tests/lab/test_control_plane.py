"""A control plane that stops working is not the network: the run stops at
session start with one line naming what it waited for and the likely
component, and the exit code of the other setup errors (pytest's 4)."""

import pytest

from packetwalk.lab import faults
from tests.suiterun import run_pytest

# fault -> what the one line must name
CONTROL_PLANE = {
    "controller-manager-down": ("ServiceAccount", "kube-controller-manager"),
    "scheduler-down": ("scheduling", "kube-scheduler"),
}


@pytest.mark.parametrize("name", list(CONTROL_PLANE))
def test_a_stopped_controller_is_one_line_at_session_start(lab, name):
    awaited, component = CONTROL_PLANE[name]
    faults.inject(name)
    try:
        r = run_pytest("suites/east_west", "-n", "auto", "-q", timeout=240)
    finally:
        faults.heal()
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 4, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert awaited in lines[0] and f"likely {component}" in lines[0], lines[0]
    assert " passed" not in r.stdout and " failed" not in r.stdout, r.stdout[-2000:]
