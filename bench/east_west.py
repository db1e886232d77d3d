"""Print the cost of one full east-west run on the lab: wall time, pods, per-probe latency.

    python3 bench/east_west.py          (the lab must be up; images already on the nodes)

Target (issue 3): <= 60 s wall with -n auto; the pod count must not grow with the tests.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "suites/east_west", "-n", "auto", "-q",
                        "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True,
                       check=False)
    wall = time.monotonic() - start
    out = r.stdout
    summary = out.strip().splitlines()[-1] if out.strip() else r.stderr.strip()
    print(f"wall time:    {wall:.1f} s   (target <= 60 s)   [{summary}]")
    for label, pattern in (("pods created", r"^pods created: .*$"), ("probes", r"^probes: .*$"),
                           ("workloads", r"^workloads ready in .*$"), ("cleanup", r"^delet(ed|ing) the namespaces.*$")):
        m = re.search(pattern, out, re.MULTILINE)
        print(f"{label + ':':13} {m.group(0).split(':', 1)[-1].strip() if m else '(not printed)'}")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
