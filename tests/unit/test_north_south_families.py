"""North-south per IP family (issue 17, item 3): the options that take one target per
family, the ids of egress and the NodePort from outside on dual- and single-stack
clusters, the sources each family's egress expects, the lab's targets and egress NAT,
the walk's addresses in the family, and a verdict that stays in the failing family."""

import importlib.util
import json
import re
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from packetwalk import aboutlab
from packetwalk.aboutlab import LabInfo, LabNode
from packetwalk.families import IPV4, IPV6, Walked
from packetwalk.hops import HOPS, params
from packetwalk.inventory import NoAddress
from packetwalk.lab import info
from packetwalk.lab import topology as t
from packetwalk.options import Options, _parse
from packetwalk.outsidewalk import Egress, OutsideWalk, egress_sources, no_target
from packetwalk.placement import build_placements
from packetwalk.probes import OK, WRONG_SOURCE, ExecResult, ProbeError, Prober
from packetwalk.records import ProbeRecord
from packetwalk.vantage import (
    ExternalTarget,
    Vantage,
    default_targets,
    parse_targets,
    target_for,
)
from packetwalk.verdict import summarize
from packetwalk.walk import HopFailure
from tests.unit.test_dual_stack import A, B, inventory
from tests.unit.test_tiers import _getter

V4, V6 = ExternalTarget("203.0.113.7", 8080), ExternalTarget("2001:db8::10", 80)
NAME = ExternalTarget("egress.example", 80)
DUAL, SINGLE = Walked((IPV4, IPV6), True), Walked((IPV4,), False)
NORTH_SOUTH = ("egress_nat", "node_port_external_cluster", "node_port_external_local",
               "node_port_external_local_no_backend")


# ---------------------------------------------------------------- the options

def test_external_target_is_repeatable_one_per_family_ipv6_in_brackets():
    assert parse_targets(["203.0.113.7:8080", "[2001:db8::10]:80"]) == (V4, V6)
    assert parse_targets([]) == ()
    assert V6.family == IPV6 and V4.family == IPV4 and NAME.family is None
    assert V6.label() == "[2001:db8::10]:80" and V4.label() == "203.0.113.7:8080"


@pytest.mark.parametrize("given, error", [
    (["[2001:db8::10]:80", "[2001:db8::11]:80"],
     ("--external-target [2001:db8::10]:80 and [2001:db8::11]:80: at most one IPv6 target "
      "(one per family)")),
    (["10.0.0.1:80", "10.0.0.2:80"], "at most one IPv4 target"),
    (["a.example:80", "b.example:80"], "at most one host-name target"),
])
def test_two_targets_of_one_family_are_one_clear_error(given, error):
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")) as caught:
        parse_targets(given)
    assert "\n" not in str(caught.value)


def test_options_carry_every_target_and_both_families_of_sources_between_processes():
    options = _parse(_getter(external_target=["203.0.113.7:8080", "[2001:db8::10]:80"],
                             expected_source_ips="10.250.0.11, fd10:0:0:2500::11"), None)
    assert options.external_targets == (V4, V6)
    assert options.expected_source_ips == ("10.250.0.11", "fd10:0:0:2500::11")
    assert Options.from_json(json.loads(json.dumps(options.to_json()))) == options
    with pytest.raises(ValueError, match="at most one IPv4 target"):
        _parse(_getter(external_target=["10.0.0.1:80", "10.0.0.2:80"]), None)


def test_each_family_takes_its_own_target_and_a_name_only_on_a_single_stack_cluster():
    both = (V4, V6)
    assert target_for(both, IPV6, suffixed=True) == V6
    assert target_for(both, IPV4, suffixed=True) == V4
    assert target_for((V4,), IPV6, suffixed=True) is None
    assert target_for((NAME,), IPV4, suffixed=False) == NAME  # as before families
    assert target_for((NAME,), IPV4, suffixed=True) is None  # a name: either family
    assert target_for((V4,), IPV6, suffixed=False) is None  # IPv6-only cluster
    assert target_for(both, None, suffixed=False) == V4  # a hop without a family


def test_a_family_without_a_target_skips_naming_the_option():
    assert no_target(IPV6, True) == (
        "no IPv6 external target: pass --external-target [IPV6]:PORT (an HTTP server whose "
        "/clientip answers with the client's ip:port; one per family), or run against the lab")
    assert "--external-target IPV4:PORT" in no_target(IPV4, True)
    assert "no IPv4 external target: pass --external-target HOST:PORT" in no_target(IPV4, False)
    assert "\n" not in no_target(IPV6, False)


# ---------------------------------------------------------------- the ids

@pytest.mark.parametrize("hop", NORTH_SOUTH)
def test_north_south_ids_end_in_the_family_on_dual_stack_only(hop):
    placements = build_placements([A, B])
    _, dual = params(HOPS[hop], placements, DUAL)
    _, single = params(HOPS[hop], placements, SINGLE)
    plain = [p.id for p in single]
    assert plain == list(HOPS[hop].placements)  # single-stack: exactly as before families
    assert [p.id for p in dual] == [f"{i}-{f}" for i in plain for f in ("ipv4", "ipv6")]
    assert all(p.values[-1] in (IPV4, IPV6) for p in dual)


def test_load_balancer_and_ingress_keep_one_id():
    """Their address is whatever the controller publishes (maybe one family): no twins."""
    for hop in ("load_balancer", "ingress"):
        names, found = params(HOPS[hop], build_placements([A, B]), DUAL)
        assert "family" not in names and [p.id for p in found] == [""]


# ---------------------------------------------------------------- expected sources

GIVEN = ("10.250.0.99", "fd10:0:0:2500::99")


@pytest.mark.parametrize("given, family, nat, expected", [
    (GIVEN, IPV4, True, ("10.250.0.99",)),  # given: those of the family
    (GIVEN, IPV6, False, ("fd10:0:0:2500::99",)),  # given wins over the lab
    (("10.250.0.99",), IPV6, True, ("fd10::11",)),  # none of IPv6 given: the lab's NAT
    (("10.250.0.99",), IPV6, False, ("fd10:244::5",)),  # not NATed: the pod's own
    (None, IPV6, None, ("fd10::11",)),  # not the lab: the node's InternalIP in it
    (None, IPV4, None, ("10.250.0.11",)),
    (GIVEN, None, None, GIVEN),  # a hop without a family: all of them, as before
])
def test_egress_expects_the_sources_of_its_family(given, family, nat, expected):
    pod_ip = {IPV4: "10.244.1.5", IPV6: "fd10:244::5", None: "10.244.1.5"}[family]
    node_ip = {IPV4: "10.250.0.11", IPV6: "fd10::11", None: "10.250.0.11"}[family]
    assert egress_sources(given, family, nat, pod_ip, node_ip) == expected


# ---------------------------------------------------------------- the lab

def test_the_lab_serves_each_family_it_has_and_says_its_egress_nat():
    dual = aboutlab.parse(info.describe(t.nodes(2), "bridge", "dual").to_json())
    assert default_targets(dual) == (ExternalTarget("198.51.100.10", 80),
                                     ExternalTarget("2001:db8:100::10", 80))
    assert dual.egress_nat == {IPV4: True, IPV6: True} == t.EGRESS_NAT
    six = aboutlab.parse(info.describe(t.nodes(2), "bridge", "ipv6").to_json())
    assert default_targets(six) == (ExternalTarget("2001:db8:100::10", 80),)
    assert six.egress_nat == {IPV6: True}
    ipv4 = info.describe(t.nodes(2), "bridge")
    assert "egress_nat" not in json.loads(ipv4.to_json())  # the IPv4 lab's file as before
    assert aboutlab.parse(ipv4.to_json()).nats_egress(IPV4)  # ... and read as NATed


def test_a_lab_that_routes_ipv6_out_says_so_and_a_bad_value_is_refused():
    lab = LabInfo("/k", "bridge", IPv4Network("10.250.0.0/24"), "pw-outside", "198.51.100.10",
                  80, (LabNode("pw-worker", "pw-worker", "/x"),), ("ipv4", "ipv6"),
                  "2001:db8:100::10", {IPV4: True, IPV6: False})
    told = aboutlab.parse(lab.to_json())
    assert told == lab and not told.nats_egress(IPV6) and told.nats_egress(IPV4)
    bad = json.loads(lab.to_json()) | {"egress_nat": {"ipv6": "no"}}
    with pytest.raises(aboutlab.LabInfoError, match="egress_nat"):
        aboutlab.parse(json.dumps(bad))


# ---------------------------------------------------------------- the walk

VANTAGE = Vantage("pw-outside", ("ip", "netns", "exec", "pw-outside"))


BOTH = Egress((V4, V6))


def outside_walk(hop, family, answer, egress=BOTH, placement="same-node"):
    commands, records = [], []

    def fake_exec(src, command, timeout):
        commands.append((src, command))
        if command[:3] == ["ip", "-o", "route"]:
            return ExecResult(0, f"{command[-1]} dev eth0 src fd10:0:0:2500::fe uid 0", "", 0.01)
        return ExecResult(0, answer, "", 0.01)

    walk = OutsideWalk(inventory(), Prober(fake_exec), HOPS[hop],
                       build_placements([A, B])[placement], records.append, VANTAGE, egress,
                       family=family, family_in_id=True)
    return walk, commands, records


def test_ipv6_egress_asks_the_ipv6_target_and_expects_the_node_ipv6():
    walk, _, records = outside_walk("egress_nat", IPV6, "[fd10:250::11]:40000")
    to = walk.external()
    assert (to.ip, to.port) == ("2001:db8::10", 80)
    client = walk.egress_client
    assert walk.egress_sources(client) == ("fd10:250::11",)
    seen = walk.ask(client, to, "clientip", source_ip=walk.egress_sources(client))
    assert seen.cls == OK and records[-1].family == IPV6
    assert "fd10:244:0:1::5" in seen.probe  # the client labelled by its IPv6


def test_ipv6_egress_not_natted_by_the_lab_expects_the_pods_own_address():
    egress = Egress((V4, V6), None, {IPV4: True, IPV6: False})
    walk, _, _ = outside_walk("egress_nat", IPV6, "[fd10:250::11]:40000", egress)
    client = walk.egress_client
    assert walk.egress_sources(client) == ("fd10:244:0:1::5",)
    seen = walk.ask(client, walk.external(), "clientip", source_ip=walk.egress_sources(client))
    assert seen.cls == WRONG_SOURCE  # the node's address: NATed where the lab says routed
    v4, _, _ = outside_walk("egress_nat", IPV4, "10.250.0.11:40000", egress)
    assert v4.egress_sources(v4.egress_client) == ("10.250.0.11",)


def test_a_family_without_a_target_has_none_to_ask():
    walk, _, _ = outside_walk("egress_nat", IPV6, "", Egress((V4,)))
    assert walk.external() is None and walk.no_target().startswith("no IPv6 external target")


def test_the_node_port_from_outside_dials_the_node_in_the_family_from_the_vantage_in_it():
    walk, commands, _ = outside_walk("node_port_external_local", IPV6, "[fd10:0:0:2500::fe]:1")
    to = walk.node_port(walk.inventory.services["server-pw-worker"], walk.entry_node, "tcp")
    assert to.ip == "fd10:250::11"
    source = walk.vantage_source(to.ip)
    assert source == "fd10:0:0:2500::fe" and commands[-1][1][-1] == "fd10:250::11"
    seen = walk.ask(walk.vantage, to, "clientip", source_ip=source)
    assert seen.cls == OK and seen.probe.startswith("pw-outside (fd10:0:0:2500::fe) -> ")


def test_a_vantage_point_without_a_route_in_the_family_skips():
    def no_ipv6(src, command, timeout):
        return ExecResult(2, "", "RTNETLINK answers: Network is unreachable", 0.01)

    walk = OutsideWalk(inventory(), Prober(no_ipv6), HOPS["node_port_external_cluster"],
                       build_placements([A, B])["same-node"], [].append, VANTAGE, Egress(),
                       family=IPV6, family_in_id=True)
    with pytest.raises(NoAddress, match="pw-outside has no route to fd10:250::11: it cannot "
                                        "probe IPv6"):
        walk.vantage_address("fd10:250::11")


# The suite's own NodePort tests, run here against fake execs at the vantage point.
SUITE = Path(__file__).parents[2] / "suites" / "north_south" / "test_node_port_external.py"


def node_port_suite():
    spec = importlib.util.spec_from_file_location("node_port_external_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vantage_walk(hop, family, family_in_id, route, answer, placement="same-node",
                 ipv6_primary=False):
    """An OutsideWalk whose vantage point answers `ip -o route get` with `route` (None:
    `ip` is missing there, as LocalExec says) and every probe with `answer` (an
    ExecResult, or what a probe that worked printed)."""
    commands, records = [], []

    def fake_exec(src, command, timeout):
        commands.append(command)
        if command[0] == "ip":
            if route is None:
                raise ProbeError("ip is missing at pw-outside")
            return ExecResult(0, route, "", 0.01)
        return answer if isinstance(answer, ExecResult) else ExecResult(0, answer, "", 0.01)

    inv = inventory()
    if ipv6_primary:  # status.podIP in IPv6: every dual-stack pod lists it first
        inv.pods.update({n: replace(p, ip=p.ips[-1], ips=p.ips[::-1])
                         for n, p in inv.pods.items() if len(p.ips) == 2})
    own = inv.services["server-pw-worker"]
    for name in ("server-pw-worker-nodeport", "server-pw-worker-local",
                 "server-pw-worker2-local"):  # the test reads each server's own Service
        inv.services[name] = replace(own, name=name)
    walk = OutsideWalk(inv, Prober(fake_exec), HOPS[hop], build_placements([A, B])[placement],
                       records.append, VANTAGE, Egress(), family=family,
                       family_in_id=family_in_id)
    return walk, commands, records


TIMED_OUT = ExecResult(28, "", "curl: (28) Connection timed out", 3.0)


@pytest.mark.parametrize("test, hop, placement, answer", [
    ("test_node_port_external_cluster", "node_port_external_cluster", "same-node",
     "server-pw-worker"),
    ("test_node_port_external_local_no_backend", "node_port_external_local_no_backend",
     "cross-node", TIMED_OUT),
])
def test_single_stack_node_port_from_outside_needs_no_ip_at_the_vantage(test, hop, placement,
                                                                       answer):
    """--vantage local on a machine without iproute2: these tests check no source, so
    they ask no route (no exec more) and their probe is labelled by the name alone."""
    walk, commands, records = vantage_walk(hop, IPV4, False, None, answer, placement)
    getattr(node_port_suite(), test)(walk)
    assert [c for c in commands if c[0] == "ip"] == [] and records[-1].ok
    assert records[-1].probe.startswith("pw-outside -> 10.250.0.1")


def test_dual_stack_node_port_from_outside_labels_the_vantage_by_its_family_address():
    walk, commands, records = vantage_walk("node_port_external_cluster", IPV6, True,
                                  "fd10:250::11 dev eth0 src fd10:0:0:2500::fe uid 0",
                                  "server-pw-worker")
    node_port_suite().test_node_port_external_cluster(walk)
    assert commands[0] == ["ip", "-o", "route", "get", "fd10:250::11"]
    assert records[-1].ok and records[-1].probe.startswith("pw-outside (fd10:0:0:2500::fe) -> ")


@pytest.mark.parametrize("route, error", [
    (None, "ip is missing at pw-outside"),
    ("10.250.0.11 dev eth0 uid 0",
     "the vantage point pw-outside's route to 10.250.0.11 names no source address"),
])
def test_the_local_test_without_a_source_to_check_is_a_broken_probe(route, error):
    """externalTrafficPolicy Local checks the source: none found is an ERROR (ProbeError,
    one line), never the check silently left out (it passed source_ip=None before)."""
    walk, _, _ = vantage_walk("node_port_external_local", IPV4, False, route, "10.250.0.254:1")
    with pytest.raises(ProbeError, match=re.escape(error)) as caught:
        node_port_suite().test_node_port_external_local(walk)
    assert "\n" not in str(caught.value)


def test_the_local_test_checks_the_source_the_route_names():
    walk, _, _ = vantage_walk("node_port_external_local", IPV4, False,
                              "10.250.0.11 dev veth0 src 10.250.0.254 uid 0", "10.250.0.99:1")
    with pytest.raises(HopFailure, match="server saw 10.250.0.99, expected 10.250.0.254"):
        node_port_suite().test_node_port_external_local(walk)


def collected(hop):
    """Every id the catalogue collects for `hop` on a dual-stack run."""
    target = HOPS[hop]
    _, found = params(target, build_placements([A, B]), DUAL)
    return {f"{target.test}[{p.id}]" if p.id else target.test for p in found}


@pytest.mark.parametrize("hop", [h.name for h in HOPS.values() if not h.by_family and h.next])
@pytest.mark.parametrize("ipv6_primary, family", [(False, "ipv4"), (True, "ipv6")])
def test_next_from_a_test_without_a_family_names_a_collected_twin(hop, ipv6_primary, family):
    """test_load_balancer's next hop has twins: on a dual-stack run its "next:" names
    the twin in the primary family (the id without one is not collected there)."""
    walk, _, _ = vantage_walk(hop, None, True, None, TIMED_OUT, ipv6_primary=ipv6_primary)
    seen = walk.ask(walk.vantage, walk.http_at("192.0.2.80", 80, "the address"), "hostname")
    step = re.search(r"next: +try .*: (\S+)", walk.failure(seen)).group(1)
    below = HOPS[hop].next[0].hop
    assert step in collected(below) and step.endswith(f"-{family}]"), step


# ---------------------------------------------------------------- the verdict

def egress(placement, family, ok):
    return ProbeRecord(hop="egress_nat", placement=placement, family=family, ok=ok,
                       cls=OK if ok else WRONG_SOURCE, client_node="pw-worker",
                       server_node="pw-worker" if placement == "same-node" else "pw-worker2",
                       src_node="pw-worker" if placement == "same-node" else "pw-worker2")


def test_egress_broken_in_ipv4_with_its_ipv6_twins_passing_names_ipv4_only():
    records = [egress(p, f, ok=(f == IPV6)) for p in ("same-node", "cross-node")
               for f in (IPV4, IPV6)]
    sentence = summarize(records)
    assert sentence.startswith("egress NAT is broken for IPv4 only, on every placement "
                               "(WRONG_SOURCE): look at the nodes' masquerade"), sentence
    assert "IPv6" not in sentence.replace("for IPv4 only", "")
