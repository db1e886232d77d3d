"""The self-check: break each layer of the lab and prove the suite names it."""

import os

import pytest

from packetwalk.lab import cluster, faults, state
from packetwalk.lab.errors import LabError


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the self-check needs root (it injects faults into the lab)")
    try:
        cluster.up(workers=2, log=lambda m: None)
    except LabError as e:
        pytest.fail(f"lab up failed: {e}", pytrace=False)
    if state.load().faults:
        faults.heal()  # a fault left by an interrupted run would blur everything
