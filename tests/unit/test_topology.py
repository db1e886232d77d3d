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
