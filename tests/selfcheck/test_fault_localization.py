"""For every fault: exactly the expected ids turn red, the verdict names the
layer, and after `heal` the same slice is green again.

The expected sets are data beside the fault catalogue (packetwalk/lab/faults_expected.py).
"""

import subprocess
import sys

import pytest

from packetwalk.lab import faults
from packetwalk.lab.faults_expected import EXPECTED, SUITES

from .run_suite import run_suites


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_is_localized(lab, tmp_path, name):
    expected = EXPECTED[name]
    faults.inject(name, expected.node)
    try:
        broken = run_suites(tmp_path / "broken", *SUITES, extra=("--no-diagnose",))
    finally:
        faults.heal()
    assert not broken.errors, f"{name}: broken probes, not network verdicts: {sorted(broken.errors)}"
    missed = expected.failing - broken.failed
    blamed = broken.failed - expected.failing
    assert not missed and not blamed, (
        f"{name}: missed {sorted(missed)}; wrongly blamed {sorted(blamed)}\n{broken.verdict}")
    assert expected.verdict in broken.verdict, f"{name}: verdict was {broken.verdict!r}"

    healed = run_suites(tmp_path / "healed", *SUITES, extra=("-k", expected.slice))
    assert healed.passed and not healed.failed and not healed.errors, (
        f"{name}: still red after heal: {sorted(healed.failed | healed.errors)}")


def test_expectations_name_real_faults_and_real_ids(lab):
    """Stale data would make the self-check vacuous: every fault and id must exist."""
    r = subprocess.run([sys.executable, "-m", "pytest", *SUITES, "--collect-only", "-q",
                        "-p", "no:cacheprovider"], capture_output=True, text=True, check=False)
    collected = {line.split("::")[-1] for line in r.stdout.splitlines() if "::" in line}
    assert collected, r.stdout + r.stderr
    for name, expected in EXPECTED.items():
        assert name in faults.FAULTS
        assert expected.failing <= collected, f"{name}: unknown ids {sorted(expected.failing - collected)}"
