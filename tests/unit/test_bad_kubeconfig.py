"""An invalid kubeconfig file stops a run with one line and exit 4 (pytest's usage
error), never a traceback or INTERNALERROR. No cluster is contacted: the file is
refused before any connection is made."""

import os
import subprocess
import sys

import pytest

from packetwalk.cluster import ClusterError, choose_target, load_configuration
from tests.suiterun import ROOT

BROKEN = {
    "not-yaml": ("{", "not YAML"),
    "a-string": ("hello", "not a kubeconfig"),
    "a-list": ("[]", "not a kubeconfig"),
    "clusters-not-a-list": ('{"apiVersion": "v1", "clusters": "x"}', "Invalid kube-config"),
    "empty": ("", "is empty"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_invalid_kubeconfig_is_one_cluster_error(tmp_path, name):
    text, why = BROKEN[name]
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(ClusterError, match=why) as caught:
        load_configuration(choose_target(str(path), None, {}, tmp_path))
    assert "\n" not in str(caught.value)


def test_a_run_with_an_invalid_kubeconfig_says_one_line_and_exits_4(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("{")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "suites/east_west",
                        f"--kubeconfig={path}", "-q"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == pytest.ExitCode.USAGE_ERROR == 4, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    line = (f"ERROR: packetwalk: kubeconfig {path} is unusable: not YAML "
            "(expected the node content, but found '<stream end>' at line 1)")
    assert out.splitlines() == [line], out
