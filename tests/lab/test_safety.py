"""The hard rule: no lab range may fall through to the uplink."""

from pathlib import Path

import pytest

from packetwalk.lab import network, topology


def uplink() -> str:
    words = network.ip("route", "show", "default").split()
    return words[words.index("dev") + 1]


@pytest.mark.parametrize("net", topology.lab_ranges(), ids=str)
def test_every_lab_range_stays_in_the_lab(lab, net):
    out = uplink()
    for addr in network.sample_addresses(net):
        dev = network.route_dev(addr)
        assert dev != out, f"{addr} ({net}) would leave through the uplink {out}"
        own = addr == str(topology.HOST_IP)  # the host's own leg on the bridge is local
        assert dev in (topology.BRIDGE, "blackhole") or (own and dev == "lo"), f"{addr} routes to {dev}"


def test_host_does_not_forward(lab):
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
