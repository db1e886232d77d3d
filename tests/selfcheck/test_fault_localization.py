"""For every fault: exactly the broken layer's ids FAIL, exactly the ids above it
are ERRORs "blocked: ..." naming the layer that blocks them, nothing else errors,
the verdict names the layer, every failure carries its diagnosis and the pinned
ids their bisection (and the policy, where one is pinned), and after `heal` the
lab is whole.

The expected sets are derived from the hop catalogue by rules (tests/selfcheck/expected.py).
"""



import time

import pytest

from packetwalk.lab import cluster, faults, state
from packetwalk.lab.cni import cni_named
from tests.selfcheck.expected import EXPECTED, SUITES, UNDIAGNOSED, expected_on, mismatches
from tests.suiterun import FULL_MATRIX, run_pytest, run_suites

# Faults whose mechanism another fault of this run already walks: CI leaves them to
# the matrix for its time (bench/matrix.py runs every fault on every network, each
# localized: docs/networks.md), and PACKETWALK_FULL_MATRIX=1 runs them here too.
MATRIX_ONLY = {
    "nodeport-udp-blocked": "nodeport-blocked breaks the NodePort layer and udp-dropped "
                            "splits one protocol from the other",
    "policy-ignores-named-ports": "policy-enforcer-down breaks the NetworkPolicy layer and "
                                  "dns-policy's diagnosis names the policy",
    "policy-ignores-except": "policy-enforcer-down breaks the NetworkPolicy layer and "
                             "dns-policy's diagnosis names the policy",
    "dns-down": "CI's flannel smoke (tests/lab/test_cni_flannel.py) localizes this very fault, "
                "and dns-policy breaks the cluster DNS layer here",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_is_localized(lab, tmp_path, name):
    cni = state.load().cni
    expected = expected_on(cni, name)
    if name not in cni_named(cni).faults_supported:
        pytest.skip(f"{name} does not apply to the lab's {cni} CNI (bench/matrix.py runs it on its own)")
    if name in MATRIX_ONLY and not FULL_MATRIX:
        pytest.skip(f"{name} runs in the matrix (bench/matrix.py, or PACKETWALK_FULL_MATRIX=1 "
                    f"here): {MATRIX_ONLY[name]}")
    faults.inject(name, expected.node)
    try:
        # One run per fault, diagnosed, without capture: each run costs its start-up
        # and deploy, and three per fault (a capture run, a heal run) took CI past its
        # time. The capture cases are proven by tests/diagnose; bench/faults.py prints
        # every failed id's capture.
        started = time.monotonic()
        # kube-router on the lab enforces a policy within about 1 s (the report's
        # "enforced after" line: max 1.1 s); 8 s bounds the polling of cases that never
        # converge (policy-enforcer-down: 27 cases, 20 s each by default, 339 s a run).
        broken = run_suites(tmp_path / "broken", *SUITES, extra=("--policy-timeout", "8"), timeout=900)
        took = time.monotonic() - started
    finally:
        faults.heal()
    # The figures docs/failures.md quotes (shown with -s or -rP).
    blocked = sum(text.startswith("blocked:") for text in broken.error_texts.values())
    print(f"{name}: {len(broken.failed)} failed, {blocked} blocked, "
          f"{len(broken.errors) - blocked} other errors, {len(broken.passed)} passed in {took:.0f}s")
    # The FAILED set is exactly `failing`; each `blocked` id is an error "blocked: ..."
    # naming its blocking layer; any other error is a broken probe, not a network verdict.
    wrong = mismatches(expected, broken.failed, broken.error_texts)
    assert not wrong, f"{name}: {wrong}\n{broken.verdict}"
    assert expected.verdict in broken.verdict, f"{name}: verdict was {broken.verdict!r}"
    # A blocked id was narrowed down too: what showed the layer below is on its report.
    for tid in sorted(t for t in broken.failed | set(expected.blocked)
                      if not t.startswith(UNDIAGNOSED)):
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
        known = expected.failing | set(expected.blocked)
        assert known <= collected, f"{name}: unknown ids {sorted(known - collected)}"
