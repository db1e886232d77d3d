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
from tests.suiterun import run_suites

FAULT = "udp-lossy"
ATTEMPTS = 20
# Binomial(20, 0.5): P(k < 3 or k > 17) is about 4 in 10,000 per cell.
LIKELY = range(3, 18)
LOWEST = ("test_pod_ip[same-node-udp]", "test_pod_ip[cross-node-udp]")


def test_a_lossy_pod_network_reads_flaky_with_its_count(lab, tmp_path):
    faults.inject(FAULT)
    try:
        started = time.monotonic()
        run = run_suites(tmp_path, "suites/east_west", extra=(
            "-k", "udp", "--attempts", str(ATTEMPTS), "--policy-timeout", "8"), timeout=900)
        took = time.monotonic() - started
    finally:
        faults.heal()
    print(f"udp-lossy: {len(run.failed)} failed ({len(run.flaky)} flaky), {len(run.errors)} errors, "
          f"{len(run.passed)} passed in {took:.0f}s; failed attempts "
          f"{ {t: run.failed_attempts.get(t) for t in LOWEST} }; flaky, not failed: "
          f"{sorted(run.flaky - run.failed)}; errors: {run.error_texts}; verdict: {run.verdict}")
    assert run.passed | run.failed, run.output[-3000:]
    # The lowest layer: both pod-IP UDP cells fail, as flaky, with a likely count.
    for tid in LOWEST:
        assert tid in run.failed and tid in run.flaky, (tid, run.output[-3000:])
        assert run.failed_attempts.get(tid) in LIKELY, (tid, run.failed_attempts.get(tid))
    # Nothing reads broken: every failure is flaky, and every error is a test blocked by
    # a layer below it whose narrowing probe was lost (the pod network, or a flaky
    # ClusterIP above it for a NodePort).
    assert run.failed <= run.flaky, sorted(run.failed - run.flaky)
    for tid, text in run.error_texts.items():
        assert text.startswith("blocked:"), (tid, text[:300])
    # Only UDP through the lossy port: DNS ids (port 53) pass.
    assert {t for t in run.passed if t.startswith("test_dns_")}, sorted(run.passed)
    # Only UDP was selected, so the scope has no protocol in it.
    assert run.verdict.startswith("pod network (PodIP) is flaky on every placement"), run.verdict
    assert "attempts failed" in run.verdict, run.verdict
