"""An intermittent layer reads *flaky*, with its attempts counted: never "all fine",
never "broken" (issue 13).

udp-lossy drops half of the run's UDP datagrams to pods at random (the `statistic`
match, packetwalk/lab/faults.py). With 20 attempts a cell fails some of them: the
chance that all 20 pass or all 20 fail is 2 in a million. The pod network is the
lowest layer that carries the loss, so its UDP ids fail as flaky and the run's verdict
says "flaky". Ids above it fail as flaky too, or are blocked by it, depending on what
their narrowing's single probes happened to see: both are right, and the test takes
either. DNS (port 53) is untouched and must pass.

It runs the east-west UDP ids only (`-k udp`): the TCP ones prove nothing here and
would double the run.
"""

import time

from packetwalk.lab import faults
from tests.selfcheck.expected import EXPECTED_FLAKY, flaky_mismatch
from tests.suiterun import run_suites

FAULT = "udp-lossy"


def test_a_lossy_pod_network_reads_flaky_with_its_count(lab, tmp_path):
    expected = EXPECTED_FLAKY[FAULT]
    faults.inject(FAULT)
    try:
        started = time.monotonic()
        run = run_suites(tmp_path, *expected.paths, extra=expected.args(), timeout=900)
        took = time.monotonic() - started
    finally:
        faults.heal()
    print(f"udp-lossy: {len(run.failed)} failed ({len(run.flaky)} flaky), {len(run.errors)} errors, "
          f"{len(run.passed)} passed in {took:.0f}s; failed attempts "
          f"{ {t: run.failed_attempts.get(t) for t in expected.lowest} }; flaky, not failed: "
          f"{sorted(run.flaky - run.failed)}; errors: {run.error_texts}; verdict: {run.verdict}")
    # The rule (tests/selfcheck/expected.py Flaky): the lowest layer's UDP cells fail as
    # flaky with a likely count; nothing reads broken; every error is a test blocked by
    # a layer below it whose narrowing probe was lost; DNS (port 53) passes; the verdict
    # says flaky and counts attempts.
    wrong = flaky_mismatch(expected, run.passed, run.failed, run.flaky, run.failed_attempts,
                           run.error_texts, run.verdict)
    assert not wrong, (wrong, run.output[-3000:])
