"""The hard rule: no lab range may fall through to the uplink.

IPv6 (a lab brought up with --ip-family dual; skipped, saying so, on an IPv4 lab):
every lab IPv6 range, and the two the host blackholes whole, is routed into
pw-br0 or blackholed, never out through the host's IPv6 default route.
"""

from ipaddress import ip_address
from pathlib import Path

import pytest

from packetwalk.lab import cluster, network, state, topology
from packetwalk.lab.processes import in_netns, run


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


def uplink6() -> str:
    """The device of the host's IPv6 default route ("" when it has none)."""
    words = network.ip("-6", "route", "show", "default", check=False).split()
    return words[words.index("dev") + 1] if "dev" in words else ""


def needs_dual() -> None:
    """A lab whose wires carry IPv6: dual-stack, or IPv6-only (the same wires)."""
    family = state.load().ip_family
    if not topology.has_ipv6(family):
        pytest.skip(f"the lab runs --ip-family {family}: it routes no IPv6, so there is none "
                    "to check (PACKETWALK_LAB_IP_FAMILY=dual or ipv6, on a lab up with that family)")


# The lab's IPv6 ranges, and the two /48 and /32 the host blackholes whole around them.
RANGES6 = [*topology.lab_ranges6(), topology.ULA, topology.DOCUMENTATION6]


@pytest.mark.parametrize("net", RANGES6, ids=str)
def test_every_lab_ipv6_range_stays_in_the_lab(lab, net):
    needs_dual()
    out = uplink6()
    for addr in network.sample_addresses(net):
        dev = network.route_dev(addr)
        assert not out or dev != out, f"{addr} ({net}) would leave through the uplink {out}"
        own = addr == str(topology.HOST_IP6)  # the host's own leg on the bridge is local
        assert dev in (topology.BRIDGE, "blackhole") or (own and dev == "lo"), f"{addr} ({net}) routes to {dev}"
        if dev == topology.BRIDGE and ip_address(addr) in topology.OUTSIDE6:
            via = network.route_via(addr)
            assert via == str(topology.ROUTER_IP6), f"{addr} routes via {via or 'no gateway'}, not the lab router"


def test_host_does_not_forward_ipv6_from_the_lab(lab):
    needs_dual()
    # Per interface: whether the host forwards what arrives from the lab. The lab
    # never sets it; 1 means the host forwarded IPv6 before the lab came up.
    value = Path(f"/proc/sys/net/ipv6/conf/{topology.BRIDGE}/forwarding").read_text().strip()
    assert value == "0", f"the host forwards IPv6 arriving on {topology.BRIDGE}"
    assert Path(f"/proc/sys/net/ipv6/conf/{topology.BRIDGE}/accept_ra").read_text().strip() == "0"


def _sysctl(ns: str, key: str) -> str:
    return run(in_netns(ns) + ["sysctl", "-n", key], f"sysctl {key} in {ns}").strip()


def test_nothing_in_the_lab_takes_router_advertisements_and_outside_has_no_ipv6_default(lab):
    needs_dual()
    lab_nodes = cluster.node_list(state.load().workers)
    for ns in [n.name for n in lab_nodes] + [topology.OUTSIDE_NS]:
        for conf in ("all", "default", "eth0"):
            assert _sysctl(ns, f"net.ipv6.conf.{conf}.accept_ra") == "0", f"{ns}: {conf}.accept_ra"
    assert network.ip("-6", "route", "show", "default", ns=topology.OUTSIDE_NS, check=False).strip() == ""
    assert _sysctl(topology.OUTSIDE_NS, "net.ipv6.conf.all.forwarding") == "0"
    for n in lab_nodes:
        default = network.ip("-6", "route", "show", "default", ns=n.name).split()
        assert default[:3] == ["default", "via", str(topology.ROUTER_IP6)], f"{n.name}: {' '.join(default)}"
