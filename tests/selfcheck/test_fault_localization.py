"""For every fault: exactly the expected ids turn red, the verdict names the
layer, every failure carries its diagnosis and the pinned ids their bisection
(and the policy, where one is pinned), and after `heal` the lab is whole.

The expected sets are derived from the hop catalogue by rules (tests/selfcheck/expected.py).
"""



import pytest

from packetwalk.lab import cluster, faults, state
from packetwalk.lab.cni import cni_named
from tests.selfcheck.expected import EXPECTED, SUITES, UNDIAGNOSED
from tests.suiterun import run_pytest, run_suites


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_is_localized(lab, tmp_path, name):
    expected = EXPECTED[name]
    cni = state.load().cni
    if name not in cni_named(cni).faults_supported:
        pytest.skip(f"{name} does not apply to the lab's {cni} CNI (bench/matrix.py runs it on its own)")
    faults.inject(name, expected.node)
    try:
        # One run per fault, diagnosed, without capture: each run costs its start-up
        # and deploy, and three per fault (a capture run, a heal run) took CI past its
        # time. The capture cases are proven by tests/diagnose; bench/faults.py prints
        # every failed id's capture.
        broken = run_suites(tmp_path / "broken", *SUITES, timeout=900)
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
    for tid, (bisected, _case) in expected.diagnosed.items():
        diagnosis = broken.diagnoses[tid]
        assert bisected in diagnosis["verdict"], f"{name}: {tid} diagnosed {diagnosis['verdict']!r}"
        named = " ".join(diagnosis.get("policies") or ())
        assert expected.named_policy in named, f"{name}: {tid} policies {named!r}"
    # Healed: the lab is whole again (the next fault's exact set shows any leftover).
    assert not cluster.problems(state.load()), f"{name}: after heal: {cluster.problems(state.load())}"


def test_expectations_name_real_faults_and_real_ids(lab):
    """Stale data would make the self-check vacuous: every fault and id must exist."""
    r = run_pytest(*SUITES, "--collect-only", "-q", timeout=120)
    collected = {line.split("::")[-1] for line in r.stdout.splitlines() if "::" in line}
    assert collected, r.stdout + r.stderr
    for name, expected in EXPECTED.items():
        assert name in faults.all_names(), name
        assert expected.failing <= collected, f"{name}: unknown ids {sorted(expected.failing - collected)}"
