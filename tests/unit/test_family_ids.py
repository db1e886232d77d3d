"""The plugin on a dual-stack cluster (faked: no cluster here): the ids it collects, the
note it prints, and a test whose end has no address in its family skipping with why."""

import textwrap
from html import escape
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]

CONFTEST = textwrap.dedent("""
    from kubernetes.client import Configuration

    import packetwalk.plugin as plugin
    from packetwalk.cluster import Facts, Target
    from packetwalk.families import ClusterFamilies
    from packetwalk.inventory import Inventory
    from packetwalk.placement import Node

    NODES = (Node("pw-worker", "10.250.0.11", "pw-worker", ("10.250.0.11", "fd10::11")),
             Node("pw-worker2", "10.250.0.12", "pw-worker2", ("10.250.0.12", "fd10::12")))
    FAMILIES = ClusterFamilies(("ipv4", "ipv6"), ("ipv4", "ipv6"), ("ipv4",), "the nodes' podCIDRs")
    plugin.choose_target = lambda *args: Target(None, None, "test")
    plugin.load_configuration = lambda target: Configuration()  # xdist workers load it
    plugin.connect = lambda *args: (Configuration(), Facts("v1.37.2", NODES, None,
                                                           families=FAMILIES))
    plugin.sweep_stale = lambda *args: []
    plugin.delete_run = lambda *args, **kwargs: None

    class Heartbeat:
        def __init__(self, *args):
            pass

        def start(self):
            pass

        def stop(self):
            pass

    plugin.Heartbeat = Heartbeat
    plugin.bring_up = lambda api, run, nodes, dns_ip, *args, **kwargs: Inventory(
        run.id, run.namespace, run.peer_namespace, list(nodes), dns_ip)
""")

TESTS = textwrap.dedent("""
    import pytest

    from packetwalk.inventory import Pod


    @pytest.mark.hop("pod_ip")
    def test_pod_ip(placement, protocol, family):
        # A server the cluster gave an IPv4 address only.
        Pod("server-b", "pw-1", "server", "pw-worker2", "10.244.2.7", 8080).target(protocol, family)


    @pytest.mark.hop("dns_resolv_conf")
    def test_dns_resolv_conf():
        pass
""")


def run(pytester, monkeypatch, *args):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's packetwalk
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_hops=TESTS)
    installed = any(ep.value == "packetwalk.plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "packetwalk.plugin"]
    return pytester.runpytest_subprocess(*plugin, "--packetwalk", "-p", "no:cacheprovider", *args)


def test_a_dual_stack_cluster_gives_twins_whose_ids_end_in_the_family(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "--collect-only", "-q")
    ids = [line.split("::", 1)[1] for line in result.outlines if "::" in line]
    assert ids == [f"test_pod_ip[{p}-{proto}-{f}]" for p in ("same-node", "cross-node")
                   for proto in ("tcp", "udp") for f in ("ipv4", "ipv6")] + ["test_dns_resolv_conf"]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_end_without_an_address_in_the_family_skips_and_the_note_says_the_families(
        pytester, monkeypatch, xdist):
    """With xdist the workers collect the controller's twins (an id set apart would
    stop the run) and skip alike."""
    result = run(pytester, monkeypatch, "-rs", "-k", "cross-node-tcp or resolv",
                 "--html", "report.html", *xdist)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * pod server-b has no IPv6 address (it has 10.244.2.7)"])
    note = ("IP families: dual-stack (pods ipv4+ipv6 from the nodes' podCIDRs; nodes ipv4+ipv6; "
            "DNS Service ipv4); walked: ipv4+ipv6")
    result.stdout.fnmatch_lines([note])
    # The report's cluster facts carry it too (the API server is a fake: the rest of the
    # facts are unavailable, the families were read at preflight).
    html = (pytester.path / "report.html").read_text()
    assert f"<th>IP families</th><td>{escape(note.removeprefix('IP families: '))}</td>" in html


def test_asking_for_a_family_the_cluster_lacks_skips_every_hop_test(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "-rs", "--ip-family", "dual", "-k", "resolv or same-node-tcp")
    # The cluster is dual: nothing skips for --ip-family (the IPv6 twin for its pod).
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.no_fnmatch_line("*--ip-family*")
    pytester.makeconftest(CONFTEST.replace('ClusterFamilies(("ipv4", "ipv6"), ("ipv4", "ipv6")',
                                           'ClusterFamilies(("ipv4",), ("ipv4",)'))
    result = pytester.runpytest_subprocess(
        *([] if any(ep.value == "packetwalk.plugin" for ep in entry_points(group="pytest11"))
          else ["-p", "packetwalk.plugin"]),
        "--packetwalk", "-p", "no:cacheprovider", "-rs", "--ip-family", "ipv6")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(["*--ip-family ipv6: the cluster has no IPv6: single-stack ipv4*"])
    result.stdout.no_fnmatch_line("*-ipv4]*")  # single-stack: ids as ever


def test_a_test_on_the_walk_fixture_gets_the_family_through_it(pytester, monkeypatch):
    """As the suites' tests are written: they ask for `walk` (and `protocol`), and the
    family comes to them through the walk fixture's closure (collected only)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST + '\npytest_plugins = ["fixtures.cluster", "fixtures.walk"]\n')
    pytester.makepyfile(test_walked=textwrap.dedent("""
        import pytest


        @pytest.mark.hop("cluster_ip")
        def test_cluster_ip(walk, protocol):
            pass
    """))
    installed = any(ep.value == "packetwalk.plugin" for ep in entry_points(group="pytest11"))
    result = pytester.runpytest_subprocess(*([] if installed else ["-p", "packetwalk.plugin"]),
                                           "--packetwalk", "-p", "no:cacheprovider",
                                           "--collect-only", "-q")
    ids = [line.split("::", 1)[1] for line in result.outlines if "::" in line]
    assert ids[:2] == ["test_cluster_ip[same-node-tcp-ipv4]", "test_cluster_ip[same-node-tcp-ipv6]"]
    assert len(ids) == 8
