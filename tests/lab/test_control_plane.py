"""A control plane that stops working is not the network: the run stops at
session start with one line naming what it waited for and the likely
component, and the exit code of the other setup errors (pytest's 4). What each
fault's line must name is the self-check's (tests/selfcheck/expected.py
EXPECTED_AT_START), so bench/matrix.py judges the same runs the same way."""

import pytest

from packetwalk.lab import faults
from tests.selfcheck.expected import (
    AT_START_ARGS,
    AT_START_TIMEOUT,
    EXPECTED_AT_START,
    stop_mismatch,
)
from tests.suiterun import run_pytest


@pytest.mark.parametrize("name", list(EXPECTED_AT_START))
def test_a_stopped_controller_is_one_line_at_session_start(lab, name):
    faults.inject(name)
    try:
        r = run_pytest(*AT_START_ARGS, timeout=AT_START_TIMEOUT)
    finally:
        faults.heal()
    why = stop_mismatch(EXPECTED_AT_START[name], r.returncode, r.stdout, r.stderr)
    assert not why, (why, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
