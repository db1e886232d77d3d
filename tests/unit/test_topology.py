from ipaddress import IPv4Network

import pytest

from packetwalk.lab import topology


def test_node_names_and_addresses_follow_the_plan():
    nodes = topology.nodes(2)
    assert [n.name for n in nodes] == ["pw-control-plane", "pw-worker", "pw-worker2"]
    assert [str(n.ip) for n in nodes] == ["10.250.0.10", "10.250.0.11", "10.250.0.12"]
    assert [n.control_plane for n in nodes] == [True, False, False]
    assert all(len(n.host_veth) <= 15 for n in topology.nodes(40))


def test_ranges_do_not_overlap_and_outside_is_a_documentation_range():
    ranges = topology.lab_ranges()
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            assert not a.overlaps(b), (a, b)
    assert topology.OUTSIDE.subnet_of(IPv4Network("198.51.100.0/24")) or topology.OUTSIDE.subnet_of(
        IPv4Network("203.0.113.0/24"))
    assert topology.OUTSIDE_HOST_IP in topology.OUTSIDE
    assert not topology.OUTSIDE.overlaps(IPv4Network("192.0.2.0/24"))  # the uplink here


def test_needs_a_worker():
    with pytest.raises(ValueError):
        topology.nodes(0)


def test_the_ipv6_plan_stays_off_the_uplink_and_inside_the_two_blackholed_prefixes():
    from ipaddress import IPv6Network
    uplink = IPv6Network("fd00::/64")  # this machine's uplink (and its default route leads out)
    ranges = topology.lab_ranges6()
    for i, a in enumerate(ranges):
        assert not a.overlaps(uplink), a
        for b in ranges[i + 1:]:
            assert not a.overlaps(b), (a, b)
    assert all(r.subnet_of(topology.ULA) for r in ranges if r != topology.OUTSIDE6)
    assert topology.OUTSIDE6.subnet_of(topology.DOCUMENTATION6)
    assert topology.OUTSIDE_HOST_IP6 in topology.OUTSIDE6
    assert all(ip in topology.UNDERLAY6 for ip in (topology.HOST_IP6, topology.ROUTER_IP6,
                                                   topology.API_SERVER_IP6))
    assert all(ip in topology.SERVICE_CIDR6 for ip in (topology.KUBERNETES_SERVICE_IP6,
                                                       topology.DNS_SERVICE_IP6))
    # 256 nodes of a /64 each; the controller-manager splits at most 16 bits.
    assert 8 <= topology.NODE_POD_PREFIX6 - topology.POD_CIDR6.prefixlen <= 16
    assert topology.SERVICE_CIDR6.prefixlen >= 108
    assert [str(n.ip6) for n in topology.nodes(2)] == [
        "fd10:0:0:2500::10", "fd10:0:0:2500::11", "fd10:0:0:2500::12"]
