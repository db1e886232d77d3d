"""Inject each lab fault, run the suites with --capture-packets, heal; print what
the report said and what it cost.

    python3 bench/faults.py [FAULT ...]      (default: every fault with expectations
                                              that the lab's CNI supports)

Per fault: the wall time of the broken run, how many ids failed against the
expected set, the run's verdict, and per failed id its bisection and capture
case. The HTML report of each run is kept under reports/faults/<fault>.html.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from packetwalk.lab import faults, state
from packetwalk.lab.cni import cni_named
from packetwalk.lab.errors import LabError
from tests.selfcheck.expected import EXPECTED, SUITES, expected_on, mismatches
from tests.suiterun import run_suites

REPORTS = Path("reports/faults")


def heal() -> bool:
    """Heal; a heal that fails is one line, after the run's own lines are printed."""
    try:
        faults.heal()
        return True
    except LabError as e:
        print(f"heal failed: {e}", flush=True)
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faults", nargs="*", metavar="FAULT", help=f"one of: {', '.join(EXPECTED)}")
    args = ap.parse_args()
    unknown = [name for name in args.faults if name not in EXPECTED]
    if unknown:
        ap.error(f"unknown fault {unknown[0]!r}; known: {', '.join(EXPECTED)}")
    cni = state.load().cni
    supported = cni_named(cni).faults_supported
    args.faults = args.faults or [name for name in EXPECTED if name in supported]
    REPORTS.mkdir(parents=True, exist_ok=True)
    exact = 0
    for name in args.faults:
        expected = expected_on(cni, name)
        faults.inject(name, expected.node)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.monotonic()
                run = run_suites(Path(tmp), *SUITES,
                                 extra=("--capture-packets", f"--html={REPORTS / name}.html"))
                wall = time.monotonic() - start
        finally:
            healed = heal()
        wrong = mismatches(expected, run.failed, run.error_texts)
        exact += not wrong
        print(f"{name}: {wall:.0f}s, {len(run.failed)} failed, {len(run.errors)} errors "
              f"({'exactly as expected' if not wrong else wrong})", flush=True)
        print(f"  verdict: {run.verdict}")
        for test_id in sorted(run.failed):
            diagnosis = run.diagnoses.get(test_id, {})
            print(f"  {test_id}: {diagnosis.get('verdict', '-')} | capture: "
                  f"{diagnosis.get('capture', '-')} | pcaps: {len(diagnosis.get('pcaps', []))}",
                  flush=True)
        for test_id in sorted(run.errors):
            print(f"  {test_id}: {run.error_texts.get(test_id, '-')}", flush=True)
        if not healed:
            return 1  # the lab is not whole: the next fault's run would measure both
    print(f"localized exactly: {exact} of {len(args.faults)} faults")
    return 0 if exact == len(args.faults) else 1


if __name__ == "__main__":
    sys.exit(main())
