"""The upgrade gate on the lab's flannel network, as a CI job runs it (issue 12).

    python3 bench/upgrade.py [--broken] [--out DIR]

The lab must be up with `--cni flannel`. Runs the suites before, upgrades
flanneld to the upgrade target node by node, runs them again against the
baseline, and goes back to the pinned version. --broken also ships a changed
VXLAN port to the first worker only (a rollout paused after one node) and
prints what the baseline diff names. Prints the wall time of each step and
the verdict lines of each run.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packetwalk.lab import versions

BROKEN_PORT = 8473  # not flannel's 8472: upgraded and not-yet-upgraded nodes disagree


def step(what: str, argv: list[str]) -> subprocess.CompletedProcess:
    start = time.monotonic()
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    print(f"{what}: exit {r.returncode} in {time.monotonic() - start:.0f}s")
    return r


def suites(out: Path, name: str, baseline: Path | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pytest", "suites", "-n", "auto", "-q", "-p", "no:cacheprovider",
            f"--html={out / name}.html"]
    if baseline is not None:
        argv.append(f"--baseline={baseline}")
    r = step(f"suites ({name})", argv)
    lines = r.stdout.splitlines()
    diff = next((i for i, line in enumerate(lines) if line.startswith("compared with ")), None)
    for i, line in enumerate(lines):
        in_diff = diff is not None and diff <= i and (i == diff or line.startswith("  "))
        if line.startswith("verdict:") or in_diff or i == len(lines) - 1:
            print(f"  {line}")
    return r


def lab(*args: str) -> str:
    r = step("packetwalk lab " + " ".join(args), ["packetwalk", "lab", *args])
    for line in (r.stdout + r.stderr).strip().splitlines():
        print(f"  {line}")
    if r.returncode != 0:
        raise SystemExit(1)
    return r.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broken", action="store_true",
                        help="also the broken variant: a changed VXLAN port on the first worker")
    parser.add_argument("--out", default=str(ROOT / "reports" / "upgrade"),
                        help="where the reports go (default reports/upgrade)")
    options = parser.parse_args()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    target, pinned = versions.FLANNEL_UPGRADE, versions.FLANNEL
    suites(out, "before")
    lab("upgrade", "--cni", f"flannel@{target}")
    after = suites(out, "after", out / "before.json")
    lab("upgrade", "--cni", f"flannel@{pinned}")
    worst = after.returncode
    if options.broken:
        lab("upgrade", "--cni", f"flannel@{target}", "--vxlan-port", str(BROKEN_PORT),
            "--nodes", "pw-worker")
        try:
            suites(out, "broken", out / "before.json")
        finally:
            lab("upgrade", "--cni", f"flannel@{pinned}")
    status = lab("status")
    # Back on the pinned version, the lab must be whole again: a rollback that leaves
    # a node behind is what this gate exists to catch.
    if "health: healthy" not in status:
        print("the lab is not healthy after going back to the pinned version")
        worst = worst or 1
    return worst


if __name__ == "__main__":
    sys.exit(main())
