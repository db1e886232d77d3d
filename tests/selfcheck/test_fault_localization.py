"""For every fault: exactly the expected ids turn red, the verdict names the
layer, every failure carries its diagnosis, the pinned ids their bisection and
capture case (with pcaps), and after `heal` the same slice is green again.

The expected sets are derived from the hop catalogue by rules (tests/selfcheck/expected.py).
"""


import re

import pytest

from packetwalk.diagnose.packets import CASES
from packetwalk.lab import faults
from tests.selfcheck.expected import EXPECTED, SUITES, UNDIAGNOSED
from tests.suiterun import ROOT, run_pytest, run_suites


def node_ids(ids) -> list[str]:
    """suites/<file>::<id> for test ids: the files hold one test function each."""
    where = {fn: path.relative_to(ROOT) for path in (ROOT / "suites").rglob("test_*.py")
             for fn in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE)}
    return [f"{where[tid.split('[')[0]]}::{tid}" for tid in sorted(ids)]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_is_localized(lab, tmp_path, name):
    expected = EXPECTED[name]
    faults.inject(name, expected.node)
    try:
        # Every id, diagnosed; then the ids whose diagnosis is pinned, again with
        # --capture-packets. A capture per failure of the whole run (a policy
        # case's, every DNS lookup's) costs minutes and shows the same cases.
        broken = run_suites(tmp_path / "broken", *SUITES)
        pinned = [tid for tid, (_, case) in expected.diagnosed.items() if case is not None]
        captured = run_suites(tmp_path / "captured", *node_ids(pinned),
                              extra=("--capture-packets",)) if pinned else None
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
    for tid, (bisected, case) in expected.diagnosed.items():
        run = broken if case is None else captured
        assert run is not None and tid in run.failed, (
            f"{name}: {tid} did not fail (again): {run and run.output[-1500:]}")
        diagnosis = run.diagnoses[tid]
        assert bisected in diagnosis["verdict"] and diagnosis.get("capture") == case, (
            f"{name}: {tid} diagnosed {diagnosis['verdict']!r}, capture {diagnosis.get('capture')!r}")
        assert case is None or (diagnosis.get("capture") in CASES and diagnosis.get("pcaps")), (
            f"{name}: {tid} has no capture: {diagnosis.get('capture')!r}")
        named = " ".join(diagnosis.get("policies") or ())
        assert expected.named_policy in named, f"{name}: {tid} policies {named!r}"

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
