"""The before/after check of an upgrade, on the lab: a healthy run is the
baseline, a run with hairpin broken names exactly what turned red (in the
terminal and in the HTML report), and the run after `heal` names it fixed.
"""

from packetwalk.lab import faults
from tests.suiterun import run_suites

SLICE = ("-k", "hairpin or (test_pod_ip and same-node)", "--no-diagnose")
HAIRPIN = {"test_hairpin[tcp]", "test_hairpin[udp]"}
NODE_IDS = sorted(f"suites/east_west/test_hairpin.py::{t}" for t in HAIRPIN)  # as results JSON keeps them


def compared(run) -> list[str]:
    """The baseline lines of the terminal summary."""
    lines = run.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("compared with "))
    return [line.strip() for line in lines[start + 1:] if line.startswith("  ")]


def test_baseline_names_new_failures_then_the_fixes(lab, tmp_path):
    before = tmp_path / "before.json"
    healthy = run_suites(tmp_path / "healthy", "suites/east_west",
                         extra=(*SLICE, f"--results-json={before}"))
    assert HAIRPIN <= healthy.passed and not healthy.failed, healthy.output[-3000:]

    faults.inject("hairpin-off")
    try:
        html = tmp_path / "broken.html"
        broken = run_suites(tmp_path / "broken", "suites/east_west",
                            extra=(*SLICE, f"--baseline={before}", f"--html={html}"))
    finally:
        faults.heal()
    assert broken.failed == HAIRPIN, broken.output[-3000:]
    new = [line for line in compared(broken) if line.startswith("new failure:")]
    assert sorted(new) == [f"new failure: {t} (passed -> failed TIMEOUT)" for t in NODE_IDS], (
        compared(broken))
    page = html.read_text()
    assert 'id="pw-baseline"' in page and all(f"new failure: {t}" in page for t in NODE_IDS)

    healed = run_suites(tmp_path / "healed", "suites/east_west",
                        extra=(*SLICE, f"--baseline={html.with_suffix('.json')}"))
    assert HAIRPIN <= healed.passed and not healed.failed, healed.output[-3000:]
    fixed = sorted(line for line in compared(healed) if line.startswith("fixed:"))
    assert fixed == [f"fixed: {t} (was failed TIMEOUT)" for t in NODE_IDS], compared(healed)
