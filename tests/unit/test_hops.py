"""The hop catalogue: ids, the next hop to try, policy truth tables."""

from packetwalk.hops import HOP_BY_TEST, HOPS, POLICY_CASES, next_step


def test_ids_name_hop_placement_and_protocol():
    assert HOPS["cluster_ip"].test_id("cross-node", None, "udp") == "test_cluster_ip[cross-node-udp]"
    assert HOPS["dns_service_name"].test_id(None, "fqdn", "tcp") == \
        "test_dns_service_name[fqdn-tcp]"
    assert HOPS["dns_resolv_conf"].test_id(None, None, None) == "test_dns_resolv_conf"


def test_every_hop_is_a_distinct_test():
    assert len(HOP_BY_TEST) == len(HOPS)


def test_the_walk_goes_down_one_layer():
    assert next_step("cluster_ip", "cross-node", "udp") == \
        "try the PodIP: test_pod_ip[cross-node-udp]"
    assert next_step("pod_ip", "cross-node", "tcp") == \
        "try the PodIP same-node: test_pod_ip[same-node-tcp]"
    assert next_step("pod_ip", "same-node", "tcp").endswith("test_node_to_pod[same-node-tcp]")
    assert "test_cluster_ip[" in next_step("dns_connect_by_name", None, "tcp")


def test_every_next_step_names_a_collectable_id():
    for hop in HOPS.values():
        for placement in hop.placements or (None,):
            for protocol in hop.protocols or (None,):
                step = next_step(hop.name, placement, protocol)
                if step is None:
                    continue
                target_id = step.split(": ", 1)[1]
                test = target_id.split("[", 1)[0]
                assert test in HOP_BY_TEST, step


def test_every_policy_case_has_a_blocked_and_a_manifest(tmp_path):
    from packetwalk.workloads import MANIFESTS

    for name, case in POLICY_CASES.items():
        assert any(c.expect == "blocked" for c in case.cells), name
        for policy in case.policies:
            assert (MANIFESTS / f"policy-{policy}.yaml").is_file(), policy


def test_params_on_two_nodes_and_on_one():
    from packetwalk.hops import params
    from packetwalk.placement import Node, build_placements

    a, b = Node("a", "10.0.0.1", "a"), Node("b", "10.0.0.2", "b")
    names, two = params(HOPS["cluster_ip"], build_placements([a, b]))
    assert names == ["placement", "protocol"]
    assert [p.id for p in two] == ["same-node-tcp", "same-node-udp", "cross-node-tcp",
                                   "cross-node-udp"]
    assert all(p.skip is None for p in two)
    _, one = params(HOPS["cluster_ip"], build_placements([a]))
    assert [p.id for p in one] == [p.id for p in two]  # same ids, skipped, not re-placed
    assert [p.skip for p in one] == [None, None, "needs 2 schedulable nodes",
                                     "needs 2 schedulable nodes"]
    _, other = params(HOPS["node_port_other_node"], build_placements([a]))
    assert all(p.skip == "needs 2 schedulable nodes" for p in other)
    _, backends = params(HOPS["cluster_ip_backends"], build_placements([a]))
    assert all(p.skip for p in backends)
    names, dns = params(HOPS["dns_service_name"], build_placements([a]))
    assert names == ["variant", "protocol"] and dns[-1].id == "fqdn-tcp" and not dns[-1].skip
    assert params(HOPS["dns_resolv_conf"], build_placements([a]))[0] == []


def test_next_steps_are_the_ones_of_the_old_table():
    """next_step() for every hop, placement and protocol, as the separate _NEXT table
    gave them before each hop carried its own (snapshot in next_steps.json)."""
    import json
    from pathlib import Path

    before = json.loads((Path(__file__).parent / "next_steps.json").read_text())
    for key, step in before.items():
        hop, placement, protocol = (None if part == "-" else part for part in key.split())
        assert next_step(hop, placement, protocol) == step, key


def test_every_hop_draws_a_path_with_its_own_station():
    from packetwalk.report.svg import TITLES

    for hop in HOPS.values():
        assert sum(kind.endswith("*") for kind in hop.path) == 1, hop.name
        assert all(kind.rstrip("*") in TITLES for kind in hop.path), hop.name


def test_a_hop_accepts_its_expected_class_or_any_blocked_one():
    from packetwalk.probes import BLOCKED_CLASSES, OK

    assert HOPS["cluster_ip"].accepted == {OK}
    assert HOPS["node_port_external_local_no_backend"].accepted == BLOCKED_CLASSES


def test_a_test_declares_its_hop_with_a_marker():
    import pytest

    from packetwalk.hops import UnknownHop, hop_of

    @pytest.mark.hop("cluster_ip")
    def test_cluster_ip():
        pass

    def test_cluster_ip_unmarked():
        pass

    @pytest.mark.hop("clusterip")
    def test_typo():
        pass

    @pytest.mark.hop("pod_ip")
    def test_not_the_hops_test():
        pass

    assert hop_of(test_cluster_ip) is HOPS["cluster_ip"]
    assert hop_of(test_cluster_ip_unmarked) is None
    with pytest.raises(UnknownHop, match=r"test_typo is marked hop\('clusterip'\), which is not"):
        hop_of(test_typo)
    with pytest.raises(UnknownHop, match="whose test is test_pod_ip"):
        hop_of(test_not_the_hops_test)


def test_every_suite_test_of_a_hop_is_marked_with_it():
    import ast
    from pathlib import Path

    marked = {}
    for path in (Path(__file__).parents[2] / "suites").rglob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marked[node.name] = [ast.literal_eval(d.args[0]) for d in node.decorator_list
                                     if isinstance(d, ast.Call) and ast.unparse(d.func)
                                     == "pytest.mark.hop"]
    assert {test: [hop.name] for test, hop in HOP_BY_TEST.items()} == marked


def test_every_hop_with_a_family_is_a_suite_test_on_the_walk_fixture():
    """The family comes to a test through the walk fixture (or the policy or the outside
    fixture, which take it too); a hop test without it would not be parametrized at all (the plugin
    parametrizes only tests taking every axis)."""
    import ast
    from pathlib import Path

    args = {}
    for path in (Path(__file__).parents[2] / "suites").rglob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                args[node.name] = {a.arg for a in node.args.args}
    with_family = [hop.test for hop in HOPS.values() if hop.by_family]
    assert with_family and all(args[test] & {"walk", "policy", "outside"} for test in with_family)
    assert "test_network_policy" in with_family
