"""The pure core (catalogue, verdict, diagnosis decisions, placements, inventory, the
probes and the walk that judges them) imports nothing from the Kubernetes client, directly or transitively."""

import subprocess
import sys
from pathlib import Path

PURE = ("packetwalk.verdict", "packetwalk.hops", "packetwalk.diagnose.narrowing",
        "packetwalk.diagnose.policyeval", "packetwalk.diagnose.policytext",
        "packetwalk.diagnose.touched", "packetwalk.diagnose.blocking",
        "packetwalk.diagnose.conclusion", "packetwalk.diagnose.packets", "packetwalk.placement",
        "packetwalk.inventory", "packetwalk.outage", "packetwalk.watchloop", "packetwalk.during",
        "packetwalk.watchcells", "packetwalk.watch", "packetwalk.report.timeline",
        "packetwalk.families", "packetwalk.probes", "packetwalk.attempts", "packetwalk.records",
        "packetwalk.walk")


def test_the_core_imports_no_kubernetes_client():
    # A fresh interpreter: this process has long imported the client through other tests.
    check = f"import {', '.join(PURE)}, sys; assert 'kubernetes' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", check], check=False,
                          cwd=Path(__file__).parents[2],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
