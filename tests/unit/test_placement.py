"""Placements from node lists: schedulable filter, order, slugs, skip reasons."""

from packetwalk.placement import (
    NEEDS_TWO_NODES,
    build_placements,
    is_schedulable,
    left_out,
    schedulable_nodes,
    slugify,
    used_nodes,
)


def node(name, ip, ready=True, taints=(), unschedulable=False):
    return {"metadata": {"name": name},
            "spec": {"taints": [{"key": k, "effect": e} for k, e in taints],
                     "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "Hostname", "address": name},
                                     {"type": "InternalIP", "address": ip}]}}


LAB = [node("pw-worker2", "10.250.0.12"),
       node("pw-control-plane", "10.250.0.10",
            taints=[("node-role.kubernetes.io/control-plane", "NoSchedule")]),
       node("pw-worker", "10.250.0.11")]


def test_control_plane_taint_cordon_and_not_ready_are_excluded():
    assert not is_schedulable(LAB[1])
    assert not is_schedulable(node("a", "1.1.1.1", unschedulable=True))
    assert not is_schedulable(node("a", "1.1.1.1", ready=False))
    assert not is_schedulable(node("a", "1.1.1.1", taints=[("x", "NoExecute")]))
    assert is_schedulable(node("a", "1.1.1.1", taints=[("x", "PreferNoSchedule")]))


def test_the_placement_note_says_which_nodes_are_left_out_and_why():
    assert left_out(LAB) == ["pw-control-plane (tainted node-role.kubernetes.io/control-plane:NoSchedule)"]
    assert left_out([node("a", "1.1.1.1", unschedulable=True), node("b", "1.1.1.2", ready=False),
                     node("c", "1.1.1.3")]) == ["a (cordoned)", "b (not Ready)"]


def test_nodes_sorted_with_internal_ip_whatever_the_input_order():
    nodes = schedulable_nodes(LAB)
    assert [(n.name, n.ip) for n in nodes] == [("pw-worker", "10.250.0.11"),
                                               ("pw-worker2", "10.250.0.12")]
    assert schedulable_nodes(list(reversed(LAB))) == nodes


def test_placements_on_two_nodes():
    p = build_placements(schedulable_nodes(LAB))
    assert (p["same-node"].client.name, p["same-node"].server.name) == ("pw-worker", "pw-worker")
    assert p["same-node"].other.name == "pw-worker2"
    assert (p["cross-node"].client.name, p["cross-node"].server.name) == ("pw-worker",
                                                                          "pw-worker2")
    assert p["cross-node"].other.name == "pw-worker"
    assert p["cross-node"].missing(("client", "server", "other")) is None


def test_single_node_skips_cross_node_never_runs_it_same_node():
    p = build_placements(schedulable_nodes([LAB[2]]))
    assert p["cross-node"].server is None
    assert p["cross-node"].missing(("client", "server")) == NEEDS_TWO_NODES == \
        "needs 2 schedulable nodes"
    assert p["same-node"].missing(("client", "server")) is None
    assert p["same-node"].missing(("client", "server", "other")) == NEEDS_TWO_NODES


def test_only_two_nodes_get_workloads_in_a_big_cluster():
    many = schedulable_nodes([node(f"n{i:02d}", f"10.0.0.{i}") for i in range(10)])
    assert [n.name for n in used_nodes(many)] == ["n00", "n01"]


def test_slugs_are_dns_safe_and_unique():
    assert slugify("ip-10-0-0-1.ec2.internal") == "ip-10-0-0-1-ec2-internal"
    assert len(slugify("x" * 100)) == 40
    long = "a" * 50
    nodes = schedulable_nodes([node(long + "1", "10.0.0.1"), node(long + "2", "10.0.0.2")])
    assert len({n.slug for n in nodes}) == 2


def test_nodes_option_picks_and_orders_or_says_why_not():
    import pytest

    from packetwalk.placement import choose_nodes

    nodes = schedulable_nodes(LAB)
    assert [n.name for n in choose_nodes(nodes, ["pw-worker2", "pw-worker"])] == \
        ["pw-worker2", "pw-worker"]
    assert choose_nodes(nodes, None) == nodes
    with pytest.raises(ValueError, match="pw-control-plane: not schedulable"):
        choose_nodes(nodes, ["pw-control-plane"])
