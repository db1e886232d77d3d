"""Every bench script answers --help without root, a lab or a cluster."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_help(script, tmp_path):
    # From elsewhere, as a user might run it: the script finds the repository itself.
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
