"""The plugin's behaviour around tests, in throwaway pytest runs (no cluster)."""

import html
import json
import os
import re
import textwrap
from importlib.metadata import entry_points

import pytest
import yaml

from tests.suiterun import ROOT, run_pytest

pytest_plugins = ["pytester"]

# Installed, the plugin loads through its entry point; from a checkout, ask for it.
PLUGIN = [] if any(ep.value == "packetwalk.plugin"
                   for ep in entry_points(group="pytest11")) else ["-p", "packetwalk.plugin"]

UNREACHABLE = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
               "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
               "users": [{"name": "u", "user": {"token": "t"}}],
               "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    """pytest subprocesses import packetwalk from this checkout, not wherever it is installed."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))


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
    result = pytester.runpytest_subprocess(*PLUGIN, "--packetwalk", "suites")
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


def test_another_projects_suites_folder_is_left_alone(pytester, monkeypatch):
    """packetwalk installed, a project with its own suites/: nothing deployed, no cluster
    contact (a kubeconfig that does not exist would be one line and exit 4)."""
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "no-such-kubeconfig"))
    suite = pytester.mkdir("suites")
    (suite / "test_x.py").write_text("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "suites")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*= packetwalk =*")


ASKS = {
    "the flag": ([], ["--packetwalk"]),
    "the ini file": ([("pytest.ini", "[pytest]\npacketwalk = true\n")], []),
    "a conftest": ([("suites/conftest.py", "packetwalk = True\n")], []),
}


@pytest.mark.parametrize("files, args", ASKS.values(), ids=ASKS)
def test_a_project_asks_for_packetwalk(pytester, bad_kubeconfig, files, args):
    for name, text in files:
        (pytester.path / name).parent.mkdir(exist_ok=True)
        (pytester.path / name).write_text(text)
    suite = pytester.path / "suites"
    suite.mkdir(exist_ok=True)
    (suite / "test_x.py").write_text("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*PLUGIN, *args, "suites")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: packetwalk: cannot reach the API server*"])


def test_this_repositorys_suites_ask_for_it(bad_kubeconfig):
    """suites/conftest.py asks: collecting the suites already needs the cluster."""
    done = run_pytest(*PLUGIN, "suites/east_west", "--collect-only", "-q", timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert done.stderr.startswith("ERROR: packetwalk: cannot reach the API server"), done.stderr


@pytest.mark.parametrize("args, error", [
    (["--nodes", "a,,b"], "--nodes 'a,,b': expected node names separated by commas"),
    (["--ready-timeout", "0"], "--ready-timeout 0: must be more than 0 seconds"),
    (["--policy-timeout", "-1"], "--policy-timeout -1: must be more than 0 seconds"),
    (["--external-target", "nohost"], "--external-target 'nohost': expected host:port"),
    (["--external-target", "[2001:db8::10]:80", "--external-target", "[2001:db8::11]:8080"],
     "--external-target [[]2001:db8::10]:80 and [[]2001:db8::11]:8080: at most one IPv6 target*"),
    (["--expected-source-ips", "10.0.0.1,x"], "*'x' does not appear to be an IPv4 or IPv6*"),
])
def test_a_bad_option_is_one_line_before_any_cluster_contact(pytester, monkeypatch, args,
                                                             error):
    monkeypatch.setenv("KUBECONFIG", str(pytester.path / "no-such-kubeconfig"))
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--packetwalk", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        line for line in result.errlines if line.startswith("ERROR: packetwalk: ")]
    result.stderr.fnmatch_lines([f"ERROR: packetwalk: {error}"])


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one-process", "xdist"])
def test_a_blocked_hop_is_an_error_of_one_line_in_pytest_and_junit(pytester, workers):
    """HopBlocked: what the hop stands on fails below it. pytest counts an error,
    JUnit writes <error> (not <failure>) whose text is the one line, and the record the
    report counts it by rides the report's user_properties (as xdist carries them)."""
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_blocked=textwrap.dedent("""
        from packetwalk.diagnose.blocking import Blocked
        from packetwalk.hops import HOPS
        from packetwalk.walk import HopBlocked

        def test_mtu():
            raise HopBlocked(Blocked(HOPS["pod_ip"], "cross-node", "udp",
                                     "a small request fails too"))
    """))
    result = pytester.runpytest_subprocess(*PLUGIN, *workers, "--junitxml=junit.xml",
                                           "--html=report.html")
    result.assert_outcomes(errors=1)
    case = ET.parse(pytester.path / "junit.xml").getroot().find(".//testcase")
    assert case.find("failure") is None
    assert case.find("error").text == ("blocked: the pod network (PodIP) across nodes fails "
                                       "(test_pod_ip[cross-node-udp]): a small request fails too")
    names = [p.get("name") for p in case.iter("property")]
    assert names == ["blocked"]
    # pytest-html keeps its rows as JSON in the page; the blocked test's is an Error.
    page = (pytester.path / "report.html").read_text()
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page)[1]))
    rows = [row for rows in blob["tests"].values() for row in rows]
    assert [row["result"] for row in rows] == ["Error"]
