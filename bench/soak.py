"""Run the suites N times on the healthy lab and print the false-failure count.

    python3 bench/soak.py [-n 10] [paths ...]      (default path: suites/east_west)

Every failure or error on a healthy lab is a false failure: the target is 0 in 10 runs.
It also counts the flaky ids (a cell some of whose --attempts failed: a failure too) and
the failed attempts of ids that passed (none may: a cell with one is flaky).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.suiterun import run_suites


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--runs", type=int, default=10)
    ap.add_argument("paths", nargs="*", default=["suites/east_west"])
    args = ap.parse_args()
    false_failures: dict[str, int] = {}
    flaky: dict[str, int] = {}
    failed_attempts = 0
    walls = []
    for i in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            run = run_suites(Path(tmp), *args.paths)
            walls.append(time.monotonic() - start)
        bad = sorted(run.failed | run.errors)
        for test_id in run.flaky:
            flaky[test_id] = flaky.get(test_id, 0) + 1
        failed_attempts += sum(n for tid, n in run.failed_attempts.items() if tid in run.passed)
        for test_id in bad:
            false_failures[test_id] = false_failures.get(test_id, 0) + 1
        total = len(run.passed) + len(run.failed) + len(run.errors) + len(run.skipped)
        print(f"run {i:2}: {len(run.passed)}/{total} passed, {len(bad)} failed or errored "
              f"in {walls[-1]:.1f}s {' '.join(bad)}", flush=True)
    print(f"false failures: {sum(false_failures.values())} in {args.runs} runs "
          f"(wall min {min(walls):.1f}s, max {max(walls):.1f}s)")
    for test_id, count in sorted(false_failures.items()):
        print(f"  {test_id}: {count}")
    print(f"flaky ids: {sum(flaky.values())} in {args.runs} runs; failed attempts in passing ids: "
          f"{failed_attempts}")
    for test_id, count in sorted(flaky.items()):
        print(f"  {test_id}: flaky {count}")
    return 0 if not false_failures and not flaky else 1


if __name__ == "__main__":
    sys.exit(main())
