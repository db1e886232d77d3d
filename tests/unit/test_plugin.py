"""The plugin's behaviour around tests, in throwaway pytest runs (no cluster)."""

import textwrap
from importlib.metadata import entry_points

import pytest
import yaml

pytest_plugins = ["pytester"]

# Installed, the plugin loads through its entry point; from a checkout, ask for it.
PLUGIN = [] if any(ep.value == "packetwalk.plugin"
                   for ep in entry_points(group="pytest11")) else ["-p", "packetwalk.plugin"]

UNREACHABLE = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
               "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
               "users": [{"name": "u", "user": {"token": "t"}}],
               "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}


@pytest.fixture
def bad_kubeconfig(pytester, monkeypatch):
    path = pytester.path / "kubeconfig"
    path.write_text(yaml.safe_dump(UNREACHABLE))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_inert_outside_suites(pytester, bad_kubeconfig):
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_unreachable_cluster_is_one_line_and_a_usage_error(pytester, bad_kubeconfig):
    suite = pytester.mkdir("suites")
    (suite / "test_x.py").write_text("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "suites")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1
    assert errors[0].startswith("ERROR: packetwalk: cannot reach the API server https://127.0.0.1:1")
    result.stdout.no_fnmatch_line("*passed*")


def test_a_broken_probe_is_an_error_not_a_failure(pytester):
    pytester.makepyfile(test_probe=textwrap.dedent("""
        from packetwalk.probes import ProbeError

        def test_probe():
            raise ProbeError("exec into pw-1/client-a failed: container not found")

        def test_network():
            assert False, "TIMEOUT"
    """))
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1, failed=1)


def test_a_hop_failure_is_reported_as_its_story_only(pytester):
    pytester.makepyfile(test_hop=textwrap.dedent("""
        from packetwalk.walk import HopFailure

        def test_cluster_ip():
            secret_local = 1
            raise HopFailure("cluster_ip [cross-node-udp]: Service translation\\n  next: ...")
    """))
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["cluster_ip [cross-node-udp]: Service translation"])
    result.stdout.no_fnmatch_line("*secret_local*")
