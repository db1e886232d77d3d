"""Whether a selection needs the hostNetwork pods, read from the command line and
the suites' hop marks, as the controller does before collection."""

from pathlib import Path

import pytest

from packetwalk.selection import (
    hop_tests,
    needs_host,
    needs_policy_lanes,
    needs_services,
    workers_for_auto,
)

ROOT = Path(__file__).resolve().parents[2]


def needed(*args: str, k: str = "", m: str = "", diagnose: bool = False) -> bool:
    return needs_host(list(args), ROOT, ROOT, k, m, diagnose)[0]


def test_every_hop_test_of_the_suites_is_found():
    marks = sum(p.read_text().count("@pytest.mark.hop(") for p in (ROOT / "suites").rglob("*.py"))
    found = hop_tests(ROOT / "suites")
    assert len(found) == marks and marks >= 20
    assert {t.function for t in found} >= {"test_pod_to_node", "test_node_to_pod", "test_pod_ip"}


@pytest.mark.parametrize(("args", "k", "want"), [
    (("suites/east_west",), "", True),  # the host tests are in it
    (("suites/east_west",), "host-network", True),
    (("suites/east_west",), "same-node-tcp", True),  # a parameter id of the host tests too
    (("suites/east_west",), "tcp and not pod_to_node", True),  # test_node_to_pod stays
    (("suites/east_west/test_host_network.py",), "", True),
    (("suites/east_west",), "network_policy", False),
    (("suites/east_west",), "not host-network", False),
    (("suites/east_west",), "not test_host_network.py", False),  # the module's name
    (("suites/east_west/test_pod_ip.py::test_pod_ip",), "", False),
    (("suites/east_west/test_host_network.py::test_pod_to_node[same-node-tcp]",), "", True),
    (("suites/north_south",), "", False),
])
def test_without_the_diagnosis_only_the_host_tests_need_them(args, k, want):
    assert needed(*args, k=k) is want


def test_the_diagnosis_asks_from_the_node_for_any_probe_from_a_pod():
    assert needed("suites/east_west", k="network_policy", diagnose=True)
    assert needed("suites/north_south", diagnose=True)  # egress starts in a pod
    # NodePort from outside starts outside: nothing to ask from a node.
    assert not needed("suites/north_south", k="node_port", diagnose=True)


@pytest.mark.parametrize(("args", "k", "m"), [
    (("suites/east_west",), "", "hop"),  # -m is not read: needed
    (("suites/east_west",), "and (", ""),  # pytest will refuse this -k; we do not guess
    (("no/such/path",), "", ""),
    (("tests/unit/test_selection.py",), "", ""),  # a file without hop tests
])
def test_anything_not_read_here_means_needed(args, k, m):
    assert needed(*args, k=k, m=m)


def test_the_family_in_ids_and_keywords_is_read_as_the_plugin_collects_them():
    from packetwalk.families import IPV4, IPV6, ClusterFamilies, walk
    dual = walk("auto", ClusterFamilies((IPV4, IPV6)))
    v6only = walk("auto", ClusterFamilies((IPV6,)))

    def host(k: str, walked) -> bool:
        return needs_host(["suites/east_west"], ROOT, ROOT, k, "", False, walked)[0]

    assert host("pod_to_node and ipv6", dual)  # the -ipv6 twins of a dual-stack run
    assert host("cross-node-tcp-ipv6", dual)
    assert not host("cross-node-tcp-ipv6", v6only)  # single-stack ids carry no family...
    assert host("pod_to_node and ipv6", v6only)  # ...but the keyword is there
    assert not host("pod_to_node and ipv6", walk("auto", ClusterFamilies((IPV4,))))


@pytest.mark.parametrize(("args", "k", "m", "want"), [
    (("suites/east_west",), "", "", True),
    (("suites/east_west",), "network_policy", "", True),
    (("suites/east_west",), "default-deny", "", True),  # a case's id
    (("suites/east_west/test_network_policy.py",), "", "", True),
    (("suites/east_west",), "test_pod_ip or test_node_to_pod", "", False),  # the granular checks
    (("suites/east_west",), "not network_policy", "", False),
    (("suites/east_west/test_cluster_ip.py",), "", "", False),
    (("suites/north_south",), "", "", False),
    (("suites/east_west",), "", "hop", True),  # not read here: deployed
    (("no/such/path",), "", "", True),
])
def test_only_the_network_policy_cases_need_the_lanes(args, k, m, want):
    needed_, why = needs_policy_lanes(list(args), ROOT, ROOT, k, m)
    assert needed_ is want and why


@pytest.mark.parametrize(("args", "k", "m", "want"), [
    (("suites/east_west",), "test_pod_ip or test_node_to_pod", "", 0),  # the granular 8
    (("suites/east_west/test_pod_ip.py::test_pod_ip",), "", "", 0),
    (("suites/east_west",), "test_pod_ip and cross-node", "", 0),
    (("suites/east_west",), "test_pod_ip or test_cluster_ip or host-network", "", None),  # 18
    (("suites/east_west",), "not network_policy", "", None),
    (("suites/east_west",), "default-deny-ingress", "", None),  # one case, but a lane each
    (("suites/east_west",), "", "", None),
    (("suites/east_west",), "test_pod_ip", "hop", None),  # -m is not read: xdist decides
    (("no/such/path",), "", "", None),
])
def test_auto_runs_only_a_small_selection_without_policy_in_one_process(args, k, m, want):
    count, why = workers_for_auto(list(args), ROOT, ROOT, k, m)
    assert count == want and why


def test_the_count_is_of_the_ids_k_selects_not_of_their_functions():
    count, why = workers_for_auto(["suites/east_west"], ROOT, ROOT,
                                  "test_pod_ip or test_cluster_ip", "")
    assert count is None and why.startswith("10 ids")  # 4 + 4 + the every-backend 2


@pytest.mark.parametrize(("k", "want"), [
    ("test_pod_ip or test_node_to_pod", False),  # the granular checks: pods and nodes only
    ("test_mtu or test_source_ip_via_pod_ip or test_dns_resolv_conf", False),
    ("test_cluster_ip", True),
    ("node_port", True),
    ("hairpin", True),  # through the server's own Service
    ("test_dns_connect_by_name", True),
    ("network_policy", True),  # cells on the lane's Service
    ("", True),
])
def test_only_hops_through_a_service_of_the_run_wait_for_the_proxies(k, want):
    needed_, why = needs_services(["suites/east_west"], ROOT, ROOT, k, "")
    assert needed_ is want and why
