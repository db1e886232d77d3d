"""Print the lab's cost: cold build, warm `up`, `down`, and memory of the running lab.

    python3 bench/lab.py            # as root: warm up/down and memory (binaries cached)
    python3 bench/lab.py --cold     # also a cold build into empty caches (tens of minutes)

Targets (issue 2): warm up <= 90 s, 3-node lab <= 4 GiB RSS in all.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def lab_rss_bytes() -> tuple[int, int]:
    """Sum of RSS over every process below the lab's cgroups, and how many there are."""
    from packetwalk.lab import cgroups

    pids = cgroups.pids_below("/" + cgroups.TOP)
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
    return total, len(pids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", action="store_true", help="also time a build into empty Go caches")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (it runs the lab)", file=sys.stderr)
        return 1
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="pw-cold-") as tmp:
            env = {**os.environ, "PACKETWALK_CACHE_ROOT": f"{tmp}/cache", "PACKETWALK_LAB_ROOT": f"{tmp}/lab"}
            code = "from packetwalk.lab import build; build.build_all(lambda m: None)"
            print(f"cold build:      {timed([sys.executable, '-c', code], env):7.1f} s")
    subprocess.run(["packetwalk", "lab", "down"], check=True, stdout=subprocess.DEVNULL)
    print(f"warm up:         {timed(['packetwalk', 'lab', 'up', '--workers', str(args.workers)]):7.1f} s"
          "   (target <= 90 s)")
    time.sleep(10)  # let start-up spikes settle before measuring what the lab holds
    rss, n = lab_rss_bytes()
    print(f"memory (RSS):    {rss / 2**30:7.2f} GiB over {n} processes   (target <= 4 GiB)")
    print(f"down:            {timed(['packetwalk', 'lab', 'down']):7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
