"""IP families: detection from the cluster's objects, --ip-family, and the id rule."""

import pytest

from packetwalk.families import (
    IPV4,
    IPV6,
    ClusterFamilies,
    Walked,
    by_family,
    detect,
    family_of,
    walk,
)
from packetwalk.hops import HOPS, next_step, params
from packetwalk.options import Options, _parse
from packetwalk.placement import Node, build_placements, schedulable_nodes
from tests.unit.test_tiers import _getter


def node(name, addresses, cidrs=()):
    return {"metadata": {"name": name}, "spec": {"podCIDRs": list(cidrs)},
            "status": {"addresses": [{"type": "InternalIP", "address": a} for a in addresses]
                       + [{"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


DUAL_NODES = [node("w1", ["10.250.0.11", "fd10:250::11"], ["10.244.1.0/24", "fd10:244:0:1::/64"]),
              node("w2", ["10.250.0.12", "fd10:250::12"], ["10.244.2.0/24", "fd10:244:0:2::/64"])]
V4_NODES = [node("w1", ["10.250.0.11"], ["10.244.1.0/24"])]
V6_NODES = [node("w1", ["fd10:250::11"], ["fd10:244:0:1::/64"])]
DUAL = ClusterFamilies((IPV4, IPV6), (IPV4, IPV6))
V4 = ClusterFamilies((IPV4,), (IPV4,))


def test_an_address_or_a_cidr_has_a_family_a_name_has_none():
    assert family_of("10.244.1.5") == IPV4 and family_of("fd10::5") == IPV6
    assert family_of("[fd10::5]") == IPV6 and family_of("fd10:244::/56") == IPV6
    assert family_of("10.244.0.0/16") == IPV4 and family_of("servers.pw-1") is None
    assert by_family(["fd10::5", "10.0.0.1", "fd10::6"]) == {IPV4: "10.0.0.1", IPV6: "fd10::5"}


def test_pods_families_come_from_the_nodes_pod_cidrs():
    found = detect(DUAL_NODES, {"spec": {"ipFamilies": ["IPv4"], "clusterIP": "10.96.0.10"}})
    assert found == ClusterFamilies((IPV4, IPV6), (IPV4, IPV6), (IPV4,), "the nodes' podCIDRs")
    assert found.dual_stack
    assert found.describe() == ("dual-stack (pods ipv4+ipv6 from the nodes' podCIDRs; "
                                "nodes ipv4+ipv6; DNS Service ipv4)")
    only6 = detect(V6_NODES, {"spec": {"clusterIP": "fd10:96::a"}})
    assert only6.pods == (IPV6,) and only6.services == (IPV6,) and not only6.dual_stack


def test_without_pod_cidrs_the_dns_pods_ips_tell_and_else_ipv4_is_assumed():
    no_cidrs = [node("w1", ["10.250.0.11"])]
    assert detect(no_cidrs, None, ["10.244.1.3", "fd10:244::3"]).pods == (IPV4, IPV6)
    assert detect(no_cidrs, None, ["10.244.1.3", "fd10:244::3"]).evidence == "the DNS pods' IPs"
    assumed = detect(no_cidrs)
    assert assumed.pods == (IPV4,) and "IPv4 assumed" in assumed.evidence
    # The old single podCIDR field counts when podCIDRs is absent.
    old = [{"metadata": {"name": "w1"}, "spec": {"podCIDR": "fd10:244::/64"}, "status": {}}]
    assert detect(old).pods == (IPV6,)


def test_auto_walks_what_the_cluster_has_and_ids_carry_the_family_only_when_dual():
    assert walk("auto", DUAL) == Walked((IPV4, IPV6), True)
    assert walk("auto", V4) == Walked((IPV4,), False)
    assert walk("dual", DUAL) == Walked((IPV4, IPV6), True)
    assert walk("ipv6", DUAL) == Walked((IPV6,), True)  # restricted: ids unchanged


def test_a_family_the_cluster_lacks_skips_with_the_reason():
    asked6 = walk("ipv6", V4)
    assert asked6.skip == ("--ip-family ipv6: the cluster has no IPv6: single-stack ipv4 "
                           "(pods ipv4; nodes ipv4)")
    assert walk("dual", V4).skip.startswith("--ip-family dual: the cluster is not dual-stack, "
                                            "it has no IPv6: ")
    assert asked6.skip_for(IPV6) == asked6.skip and asked6.skip_for(None) == asked6.skip


def test_dual_stack_ids_end_in_the_family_single_stack_ids_are_unchanged():
    a, b = Node("a", "10.0.0.1", "a", ("10.0.0.1", "fd10::1")), Node("b", "10.0.0.2", "b")
    placements = build_placements([a, b])
    names, dual = params(HOPS["pod_ip"], placements, walk("auto", DUAL))
    assert names == ["placement", "protocol", "family"]
    assert [p.id for p in dual] == [
        "same-node-tcp-ipv4", "same-node-tcp-ipv6", "same-node-udp-ipv4", "same-node-udp-ipv6",
        "cross-node-tcp-ipv4", "cross-node-tcp-ipv6", "cross-node-udp-ipv4", "cross-node-udp-ipv6"]
    assert dual[1].values == ("same-node", "tcp", IPV6) and not any(p.skip for p in dual)
    names, single = params(HOPS["pod_ip"], placements, walk("auto", V4))
    assert [p.id for p in single] == [p.id for p in params(HOPS["pod_ip"], placements)[1]]
    assert names[-1] == "family" and single[0].values == ("same-node", "tcp", IPV4)
    # A single-stack IPv6 cluster: ids as ever, the walk in IPv6 (AAAA, v6 addresses).
    _, six = params(HOPS["dns_service_name"], placements,
                    walk("auto", ClusterFamilies((IPV6,), (IPV6,))))
    assert six[0].id == "short-udp" and six[0].values == ("short", "udp", IPV6)


def test_a_hop_without_a_family_keeps_its_id_and_runs_once():
    placements = build_placements([Node("a", "10.0.0.1", "a"), Node("b", "10.0.0.2", "b")])
    names, cases = params(HOPS["dns_resolv_conf"], placements, walk("auto", DUAL))
    assert "family" not in names and [c.id for c in cases] == [""]
    # ...and skips too when nothing can be walked as asked.
    _, skipped = params(HOPS["dns_resolv_conf"], placements, walk("ipv6", V4))
    assert all(p.skip and p.skip.startswith("--ip-family ipv6") for p in skipped)


def test_network_policy_runs_each_case_in_each_family_on_dual_stack():
    # An enforcer may police one family only (kube-router v2.1.0 on the dual-stack lab).
    placements = build_placements([Node("a", "10.0.0.1", "a"), Node("b", "10.0.0.2", "b")])
    names, cases = params(HOPS["network_policy"], placements, walk("auto", DUAL))
    assert names == ["variant", "family"]
    assert [c.id for c in cases[:2]] == ["default-deny-ingress-ipv4", "default-deny-ingress-ipv6"]
    _, single = params(HOPS["network_policy"], placements, walk("auto", V4))
    assert single[0].id == "default-deny-ingress" and len(single) == len(cases) // 2


def test_a_restricted_dual_stack_run_keeps_both_ids_and_skips_the_other_family():
    placements = build_placements([Node("a", "10.0.0.1", "a"), Node("b", "10.0.0.2", "b")])
    _, cases = params(HOPS["cluster_ip"], placements, walk("ipv6", DUAL))
    skips = {p.id: p.skip for p in cases}
    assert skips["same-node-tcp-ipv6"] is None
    assert skips["same-node-tcp-ipv4"] == "--ip-family ipv6: IPv4 is not walked in this run"
    # A missing node still says so first.
    _, one = params(HOPS["cluster_ip"], build_placements([Node("a", "10.0.0.1", "a")]),
                    walk("auto", DUAL))
    assert {p.skip for p in one if p.id.startswith("cross")} == {"needs 2 schedulable nodes"}


def test_next_step_stays_in_the_family_where_the_next_hop_has_one():
    assert next_step("cluster_ip", "cross-node", "udp", IPV6) == (
        "try the PodIP: test_pod_ip[cross-node-udp-ipv6]")
    assert next_step("cluster_ip", "cross-node", "udp") == "try the PodIP: test_pod_ip[cross-node-udp]"
    assert next_step("dns_service_name", None, "udp", IPV6) == (
        "try the pod's resolv.conf: test_dns_resolv_conf")


def test_a_node_keeps_an_address_per_family():
    nodes = schedulable_nodes(DUAL_NODES)
    assert nodes[0].ip == "10.250.0.11" and nodes[0].ips == ("10.250.0.11", "fd10:250::11")
    assert nodes[0].ip_of(IPV6) == "fd10:250::11" and nodes[0].ip_of(None) == "10.250.0.11"
    assert Node(**{**vars(nodes[0]), "ips": list(nodes[0].ips)}) == nodes[0]  # from JSON
    assert Node("x", "10.0.0.1", "x").ip_of(IPV6) is None


def test_ip_family_option_defaults_to_auto_and_travels():
    assert Options().ip_family == "auto" and _parse(_getter(ip_family="auto"), None).ip_family == "auto"
    options = _parse(_getter(ip_family="ipv6"), None)
    assert options.ip_family == "ipv6" and Options.from_json(options.to_json()) == options


@pytest.mark.parametrize("asked", ["auto", "ipv4", "ipv6", "dual"])
def test_every_choice_of_ip_family_is_one_walk_decides(asked):
    assert walk(asked, DUAL).families
