"""For every fault: exactly the expected ids turn red, the verdict names the
layer, every failure carries its diagnosis (bisection, capture case, pcaps),
and after `heal` the same slice is green again.

The expected sets are derived from the hop catalogue by rules (tests/selfcheck/expected.py).
"""


import pytest

from packetwalk.diagnose.packets import CASES
from packetwalk.lab import faults
from tests.selfcheck.expected import EXPECTED, SUITES, UNDIAGNOSED
from tests.suiterun import run_pytest, run_suites


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_is_localized(lab, tmp_path, name):
    expected = EXPECTED[name]
    faults.inject(name, expected.node)
    try:
        broken = run_suites(tmp_path / "broken", *SUITES, extra=("--capture-packets",))
    finally:
        faults.heal()
    assert not broken.errors, f"{name}: broken probes, not network verdicts: {sorted(broken.errors)}"
    missed = expected.failing - broken.failed
    blamed = broken.failed - expected.failing - expected.either_way
    assert not missed and not blamed, (
        f"{name}: missed {sorted(missed)}; wrongly blamed {sorted(blamed)}\n{broken.verdict}")
    assert expected.verdict in broken.verdict, f"{name}: verdict was {broken.verdict!r}"
    for tid in sorted(t for t in broken.failed if not t.startswith(UNDIAGNOSED)):
        diagnosis = broken.diagnoses.get(tid)
        assert diagnosis and diagnosis.get("verdict"), f"{name}: {tid} has no diagnosis"
        assert diagnosis.get("capture") in CASES and diagnosis.get("pcaps"), (
            f"{name}: {tid} has no capture: {diagnosis.get('capture')!r}")
    for tid, (bisected, case) in expected.diagnosed.items():
        diagnosis = broken.diagnoses[tid]
        assert bisected in diagnosis["verdict"] and diagnosis["capture"] == case, (
            f"{name}: {tid} diagnosed {diagnosis['verdict']!r}, capture {diagnosis['capture']!r}")

    healed = run_suites(tmp_path / "healed", *SUITES, extra=("-k", expected.slice))
    assert healed.passed and not healed.failed and not healed.errors, (
        f"{name}: still red after heal: {sorted(healed.failed | healed.errors)}")


def test_expectations_name_real_faults_and_real_ids(lab):
    """Stale data would make the self-check vacuous: every fault and id must exist."""
    r = run_pytest(*SUITES, "--collect-only", "-q", timeout=120)
    collected = {line.split("::")[-1] for line in r.stdout.splitlines() if "::" in line}
    assert collected, r.stdout + r.stderr
    for name, expected in EXPECTED.items():
        assert name in faults.FAULTS
        assert expected.failing <= collected, f"{name}: unknown ids {sorted(expected.failing - collected)}"
