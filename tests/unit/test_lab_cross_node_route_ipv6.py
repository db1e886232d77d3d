"""cross-node-route-ipv6 (issue 17, item 5): on a dual-stack lab, the other nodes lose
their IPv6 route to one node's pods and keep the IPv4 one. Pure, as test_lab_dual: the
bridge's route commands are recorded, never run; the fault is refused in one line on a
lab that is not dual-stack; the self-check's split is typed out. Not yet run on the lab
(tests/lab/test_dual_stack.py runs it there).
"""

import pytest

from packetwalk.families import IPV4, IPV6
from packetwalk.hops import POD_NETWORK
from packetwalk.lab import cluster, faults
from packetwalk.lab import topology as t
from packetwalk.lab.cni import bridge, cni_named, names
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import Proc, State
from packetwalk.records import ProbeRecord
from packetwalk.verdict import summarize
from tests.selfcheck.expected import CASES, EXPECTED, EXPECTED_DUAL, family_id, mismatches

NODES = t.nodes(2)
CP, WORKER, WORKER2 = NODES
CIDRS = {"pw-control-plane": "10.244.0.0/24", "pw-worker": "10.244.1.0/24", "pw-worker2": "10.244.2.0/24"}
CIDRS6 = {"pw-control-plane": "fd10:0:0:4400::/64", "pw-worker": "fd10:0:0:4401::/64",
          "pw-worker2": "fd10:0:0:4402::/64"}
FAULT = "cross-node-route-ipv6"


@pytest.fixture
def commands(monkeypatch):
    """Every `ip` command the bridge CNI would run, as (namespace, arguments)."""
    ran: list[tuple[str | None, list[str]]] = []
    monkeypatch.setattr(bridge, "ip", lambda *args, ns=None, check=True: ran.append((ns, list(args))))
    return ran


# ---------------------------------------------------------------- the bridge's routes

def test_the_family_filter_picks_only_the_ipv6_routes_to_the_node():
    routes = bridge.cut_routes(NODES, CIDRS, WORKER2, CIDRS6, family=IPV6)
    assert routes == [
        bridge.PodRoute("pw-control-plane", True, "fd10:0:0:4402::/64", "fd10:0:0:2500::12"),
        bridge.PodRoute("pw-worker", True, "fd10:0:0:4402::/64", "fd10:0:0:2500::12")]
    # Exactly the routes lab up wrote to that /64 in the other nodes; the host's stay.
    written = bridge.pod_routes(NODES, CIDRS6, ipv6=True)
    assert routes == [r for r in written if r.ns is not None and r.cidr == "fd10:0:0:4402::/64"]
    # IPv4 alone, and both families (the filter left out).
    assert [(r.ipv6, r.cidr) for r in bridge.cut_routes(NODES, CIDRS, WORKER2, CIDRS6, family=IPV4)] \
        == [(False, "10.244.2.0/24")] * 2
    both = bridge.cut_routes(NODES, CIDRS, WORKER2, CIDRS6)
    assert len(both) == 4 and {r.ipv6 for r in both} == {True, False}


def test_cut_off_deletes_only_the_ipv6_routes_and_reconnect_puts_exactly_them_back(commands):
    bridge.CNI.cut_off(NODES, CIDRS, WORKER2, CIDRS6, family=IPV6)
    assert commands == [("pw-control-plane", ["-6", "route", "del", "fd10:0:0:4402::/64"]),
                        ("pw-worker", ["-6", "route", "del", "fd10:0:0:4402::/64"])]
    commands.clear()
    bridge.CNI.reconnect(NODES, CIDRS, WORKER2, CIDRS6, family=IPV6)
    # What lab up wrote there (test_lab_dual), typed out: not cut_routes' own output.
    assert commands == [
        ("pw-control-plane", ["-6", "route", "replace", "fd10:0:0:4402::/64", "via", "fd10:0:0:2500::12"]),
        ("pw-worker", ["-6", "route", "replace", "fd10:0:0:4402::/64", "via", "fd10:0:0:2500::12"])]


def test_cross_node_route_cuts_what_it_cut_before(commands):
    """The filter is a parameter: cross-node-route's calls (no cidrs6, no family) run
    the commands they ran before it, on IPv4 and IPv6-only labs alike."""
    bridge.CNI.cut_off(NODES, CIDRS, WORKER)
    assert commands == [("pw-control-plane", ["route", "del", "10.244.1.0/24"]),
                        ("pw-worker2", ["route", "del", "10.244.1.0/24"])]
    commands.clear()
    bridge.CNI.cut_off(NODES, CIDRS6, WORKER)
    assert commands == [("pw-control-plane", ["-6", "route", "del", "fd10:0:0:4401::/64"]),
                        ("pw-worker2", ["-6", "route", "del", "fd10:0:0:4401::/64"])]
    commands.clear()
    bridge.CNI.reconnect(NODES, CIDRS, WORKER)
    assert [ns for ns, _ in commands] == ["pw-control-plane", "pw-worker2"]
    assert all(a[:3] == ["route", "replace", "10.244.1.0/24"] for _, a in commands)


def test_an_ipv6_cut_without_ipv6_cidrs_is_refused_not_passed_for_injected(commands):
    with pytest.raises(LabError, match=r"^no ipv6 route to pw-worker2's pods to cut: the lab routes "
                                       r"its pods in ipv4 only$"):
        bridge.CNI.cut_off(NODES, CIDRS, WORKER2, family=IPV6)
    assert commands == []


@pytest.mark.parametrize(("nodes", "cidrs", "why"), [
    (NODES, {n: c for n, c in CIDRS.items() if n != "pw-worker2"},
     "no route to pw-worker2's pods to cut: pw-worker2 has no pod CIDR"),
    ([WORKER2], {"pw-worker2": "10.244.2.0/24"},
     "no route to pw-worker2's pods to cut: no other node routes to them"),
])
def test_a_cut_that_finds_nothing_is_refused_without_a_family_too(commands, nodes, cidrs, why):
    """cross-node-route (no family) that would cut nothing says so in one line, rather
    than leave the fault reading as injected."""
    with pytest.raises(LabError) as refused:
        bridge.CNI.cut_off(nodes, cidrs, WORKER2)
    assert str(refused.value) == why and commands == []


def test_the_fault_hands_the_bridge_both_families_and_the_filter(monkeypatch):
    told = []

    class Recording:
        def cut_off(self, *args, **kwargs):
            told.append(("cut_off", args, kwargs))

        def reconnect(self, *args, **kwargs):
            told.append(("reconnect", args, kwargs))

    monkeypatch.setattr(faults, "_cni", lambda state: Recording())
    monkeypatch.setattr(cluster, "node_list", lambda workers: NODES)
    monkeypatch.setattr(cluster, "pod_cidrs", lambda: dict(CIDRS))
    monkeypatch.setattr(cluster, "pod_cidrs6", lambda: dict(CIDRS6))
    fault = faults.FAULTS[FAULT]
    fault.inject(State(ip_family="dual"), WORKER2)
    fault.heal(State(ip_family="dual"), WORKER2)
    assert told == [(step, (NODES, CIDRS, WORKER2, CIDRS6), {"family": IPV6})
                    for step in ("cut_off", "reconnect")]


# ---------------------------------------------------------------- where it applies

def test_it_is_per_node_and_on_every_cni_built_for_dual_stack():
    fault = faults.FAULTS[FAULT]
    assert fault.per_node and "IPv6" in fault.symptom and "dual-stack" in fault.symptom
    assert [n for n in names() if FAULT in cni_named(n).faults_supported] == ["bridge", "flannel"]
    # The CNIs that take a dual-stack lab at all.
    assert [n for n in names() if "dual" in cni_named(n).ip_families] == ["bridge", "flannel"]
    assert "flannel-v6.1" in cni_named("flannel").fault_symptoms[FAULT]


@pytest.mark.parametrize(("family", "why"), [
    ("ipv4", "an IPv4 lab has no IPv6 route to cut"),
    ("ipv6", "on an IPv6-only lab, cross-node-route cuts the IPv6 route"),
])
def test_a_lab_that_is_not_dual_stack_is_refused_in_one_line(monkeypatch, family, why):
    monkeypatch.setattr(faults, "load", lambda: State(workers=2, cni="bridge", ip_family=family,
                                                      procs=[Proc("kubelet", "pw-worker", 1, 1, [])]))
    monkeypatch.setattr(faults, "_node", lambda state, name: pytest.fail("went past the checks"))
    with pytest.raises(LabError) as refused:
        faults.inject(FAULT)
    assert str(refused.value) == (f"fault {FAULT} needs a dual-stack lab (`packetwalk lab up "
                                  f"--ip-family dual`); {why}")
    assert "\n" not in str(refused.value)
    faults.check_family(FAULT, "dual")
    faults.check_family("cross-node-route", "dual")


def test_the_fault_list_shows_it_with_its_symptom_and_network(monkeypatch):
    monkeypatch.setattr(faults, "load", lambda: State())
    line = next(x for x in faults.catalogue().splitlines() if x.startswith(f"{FAULT} "))
    assert "--node" in line and "IPv6 pod CIDR" in line and "(dual-stack labs only)" in line
    assert line.endswith("[bridge, flannel]")
    running = State(workers=2, cni="bridge", ip_family="dual", procs=[Proc("kubelet", "pw-worker", 1, 1, [])])
    monkeypatch.setattr(faults, "load", lambda: running)
    assert any(x.startswith(f"{FAULT} ") for x in faults.catalogue().splitlines())


# ---------------------------------------------------------------- what the self-check expects

# The slice tests/lab/test_dual_stack.py runs (-k "pod_ip or cluster_ip"), typed out.
SLICE_TESTS = ("test_pod_ip", "test_cluster_ip", "test_cluster_ip_every_backend",
               "test_source_ip_via_pod_ip", "test_source_ip_via_cluster_ip")
SLICE = {family_id(case, f) for case in CASES for f in (IPV4, IPV6) if case.hop.test in SLICE_TESTS}
PINNED_FAILING = {"test_pod_ip[cross-node-tcp-ipv6]", "test_pod_ip[cross-node-udp-ipv6]"}
PINNED_BLOCKED = {f"{test}[cross-node-{p}-ipv6]" for p in ("tcp", "udp") for test in (
    "test_cluster_ip", "test_cluster_ip_every_backend", "test_source_ip_via_pod_ip",
    "test_source_ip_via_cluster_ip")}


def test_the_slice_splits_as_typed():
    split = EXPECTED_DUAL[FAULT].split.within(SLICE)
    assert len(SLICE) == 36
    assert split.failing == PINNED_FAILING
    assert split.blocked == dict.fromkeys(PINNED_BLOCKED, POD_NETWORK)
    assert split.either_way == frozenset()
    # Their IPv4 twins pass, and so does everything else of the slice.
    assert split.must_pass == {x.replace("-ipv6]", "-ipv4]") for x in PINNED_FAILING | PINNED_BLOCKED}
    assert len(SLICE - PINNED_FAILING - PINNED_BLOCKED) == 26


def test_the_whole_split_is_cross_node_routes_in_ipv6():
    """Every red id of cross-node-route, in its -ipv6 twin, with the same layer blocking;
    the vantage's NodePort too, now that north-south runs per family."""
    dual, ipv4 = EXPECTED_DUAL[FAULT], EXPECTED["cross-node-route"]
    split, vantage = dual.split, "test_node_port_external_cluster[cross-node]"
    assert vantage in ipv4.failing and "test_node_port_external_cluster[cross-node-ipv6]" in split.failing
    assert {x.replace("-ipv6]", "]") for x in split.failing} == set(ipv4.failing)
    assert {x.replace("-ipv6]", "]"): layer for x, layer in split.blocked.items()} == ipv4.blocked
    assert all(x.endswith("-ipv6]") for x in split.failing | set(split.blocked))
    assert dual.node == ipv4.node == "pw-worker2"
    # A run that shows it exactly is no mismatch; an IPv4 twin failing is.
    errors = {x: f"blocked: the {layer.name} across nodes for IPv6 fails (...)" for x, layer in
              split.blocked.items()}
    assert mismatches(split, set(split.failing), errors) == {}
    assert mismatches(split, set(split.failing) | {"test_pod_ip[cross-node-tcp-ipv4]"}, errors) == {
        "wrongly blamed": ["test_pod_ip[cross-node-tcp-ipv4]"]}


def test_the_pinned_verdict_is_what_the_verdict_says_for_it():
    def rec(family, placement, protocol, ok):
        return ProbeRecord(hop="pod_ip", placement=placement, protocol=protocol, family=family, ok=ok,
                           cls="OK" if ok else "TIMEOUT", client_node="pw-worker",
                           server_node="pw-worker2" if placement == "cross-node" else "pw-worker")
    records = [rec(f, p, proto, not (f == IPV6 and p == "cross-node"))
               for f in (IPV4, IPV6) for p in ("same-node", "cross-node") for proto in ("tcp", "udp")]
    said = summarize(records)
    assert EXPECTED_DUAL[FAULT].verdict in said
    assert "for IPv6 only" in said and "across nodes" in said and "(pw-worker -> pw-worker2)" in said
