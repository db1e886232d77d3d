"""The run's lines in the terminal summary, from the folded results. Pure.

The verdict line is results.sentence, the very sentence the HTML report's
verdict and JUnit's testsuite property carry.
"""

from __future__ import annotations

import statistics

from packetwalk.diagnose import conclusion
from packetwalk.report import enforcement
from packetwalk.report.matrix import flaky_words
from packetwalk.report.results import TestResult, sentence


def lines(results: list[TestResult]) -> list[str]:
    """Probe latencies, the verdict and the diagnoses summed up."""
    out = []
    seconds = sorted(s for result in results for r in result.probes
                     for s in (r.attempt_seconds or (r.seconds,)) if s)
    if seconds:
        p95 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))]
        out.append(f"probes: {len(seconds)}, latency p50 {statistics.median(seconds):.3f}s "
                   f"p95 {p95:.3f}s max {seconds[-1]:.3f}s")
    if results:
        out.append(f"verdict: {sentence(results)}")
    out += [f"flaky: {r.id.rsplit('::', 1)[-1]}: {flaky_words(r)}" for r in results if r.flaky]
    out += enforcement.lines(results)
    diagnoses = [d for result in results for d in result.diagnoses]
    out += [f"diagnosis: {line}" for line in conclusion.summarize(diagnoses)]
    return out
