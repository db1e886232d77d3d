"""The NetworkPolicy truth tables are data: every cell names a known pod, target and
port, every policy a manifest that selects only its own lane, and the semantics a
case relies on (for the self-check's faults) are the ones its manifests use."""

import secrets
import time
from string import Template

import pytest

from fixtures.policy import free_lane
from packetwalk.hops import (
    EXCEPT,
    LABEL_NAMESPACE,
    LABEL_POD,
    NAMED_PORT,
    POD_IP_BLOCK,
    POLICY_CASES,
    POLICY_PORTS,
    POLICY_SOURCES,
    POLICY_TARGETS,
    SCTP,
    UPDATE,
    Cell,
    Change,
    Step,
)
from packetwalk.inventory import LANE_LABEL, POLICY, POLICY_LANES, policy_pod_name
from packetwalk.placement import Node
from packetwalk.policywalk import covering, enforced_record, label_edit, truth_table
from packetwalk.probes import ExecResult, Observation
from packetwalk.records import ProbeRecord
from packetwalk.runs import Run
from packetwalk.workloads import MANIFESTS, plan, policy_objects

RUN = Run("0123ab")
NODES = [Node("pw-worker", "10.250.0.11", "pw-worker"),
         Node("pw-worker2", "10.250.0.12", "pw-worker2")]
ADDRESSES = {"CLIENT_B_HOST": "10.244.1.7/32", "CLIENTS_CIDR": "10.244.1.0/28",
             "SERVER_HOST": "10.244.2.9/32", "TARGETS_CIDR": "10.244.2.0/28"}


def policies_of(case):
    names = list(case.policies)
    for step in case.steps:
        for change in step.changes:
            if change.kind == UPDATE:
                names += [change.subject, change.to]
            elif change.kind not in (LABEL_POD, LABEL_NAMESPACE):
                names.append(change.subject)
    return names


def rendered(policy, lane="1"):
    return policy_objects(RUN, policy, lane, **ADDRESSES)[0]


@pytest.mark.parametrize("name", list(POLICY_CASES))
def test_every_cell_names_a_known_pod_target_and_port(name):
    case = POLICY_CASES[name]
    for cell in case.every_cell:
        assert cell.source in POLICY_SOURCES, cell
        assert cell.target in POLICY_TARGETS, cell
        assert cell.port in POLICY_PORTS, cell
        assert cell.expect in ("open", "blocked"), cell
        if cell.target == "cluster-ip":  # the lane's Service serves http and alt
            assert cell.port in ("http", "alt"), cell
        if cell.target in ("client-b", "other", "dns"):  # netexec there: http and udp
            assert cell.port in ("http", "udp"), cell
        assert cell.source != cell.target, cell
    # Not vacuous: something must be blocked in some phase (the baseline, all open,
    # shows the same probes pass without the policies).
    assert any(c.expect == "blocked" for c in case.every_cell), name
    assert all(step.cells and step.changes for step in case.steps), name
    assert case.needs in ("", SCTP) and case.relies_on <= {EXCEPT, NAMED_PORT, POD_IP_BLOCK}
    # A case relies on an ipBlock matching pods exactly when one of its policies names
    # pod addresses in an ipBlock (it may then skip where the CNI never does that).
    texts = [(MANIFESTS / f"policy-{p}.yaml").read_text() for p in policies_of(case)]
    names_pods = any("ipBlock" in t and any(f"${{{v}}}" in t for v in ADDRESSES) for t in texts)
    assert (POD_IP_BLOCK in case.relies_on) == names_pods, name


@pytest.mark.parametrize("name", list(POLICY_CASES))
def test_every_policy_renders_for_its_lane_and_selects_only_it(name):
    for policy in policies_of(POLICY_CASES[name]):
        text = (MANIFESTS / f"policy-{policy}.yaml").read_text()
        assert set(Template(text).get_identifiers()) <= {
            "NAMESPACE", "RUN", "LANE", "PEER_NAMESPACE", *ADDRESSES}, policy
        for lane in POLICY_LANES:
            obj = rendered(policy, lane)
            assert obj["kind"] == "NetworkPolicy"
            assert obj["metadata"]["name"] == f"{policy}-{lane}"
            selector = obj["spec"]["podSelector"]
            lanes = [selector.get("matchLabels", {}).get(LANE_LABEL)] + [
                e["values"][0] for e in selector.get("matchExpressions", [])
                if e["key"] == LANE_LABEL and e["operator"] == "In"]
            assert lane in lanes, (policy, selector)


def uses(policy, semantics):
    spec = rendered(policy)["spec"]
    rules = [*(spec.get("ingress") or []), *(spec.get("egress") or [])]
    if semantics == EXCEPT:
        peers = [p for r in rules for p in (r.get("from") or r.get("to") or [])]
        return any(p.get("ipBlock", {}).get("except") for p in peers)
    return any(isinstance(p.get("port"), str) for r in rules for p in r.get("ports") or [])


@pytest.mark.parametrize("semantics", [EXCEPT, NAMED_PORT])
def test_a_case_relies_on_a_semantic_exactly_when_its_policies_use_it(semantics):
    """What the self-check's faults break: a fault that ignores except (or named
    ports) can turn only these cases red, and must turn them all."""
    for name, case in POLICY_CASES.items():
        used = any(uses(policy, semantics) for policy in policies_of(case))
        assert used == (semantics in case.relies_on), name


def test_relabelling_cases_label_real_subjects_and_undo_their_own_changes():
    for name, case in POLICY_CASES.items():
        changed = {}
        for change in (c for step in case.steps for c in step.changes):
            if change.kind == LABEL_POD:
                assert change.subject in POLICY_SOURCES, name
            if change.kind == LABEL_NAMESPACE:
                assert change.subject == "peer", name
            if change.kind in (LABEL_POD, LABEL_NAMESPACE):
                key, value = label_edit(Template(change.to).substitute(LANE="1"))
                changed[(change.subject, key)] = value
        # The last step puts every label back (the walk restores them anyway).
        for (subject, key), value in changed.items():
            original = {"client-b": {"packetwalk.io/access": "b"}}.get(subject, {}).get(key)
            assert value == original, (name, subject, key)


def test_phases_name_their_changes_and_the_baseline_covers_every_probe_once():
    step = Step((Change(LABEL_NAMESPACE, "peer", "packetwalk.io/policy-lane-1=admitted"),
                 Change(UPDATE, "allow-clients-a-b", "allow-from-client-a")), ())
    assert step.phase == ("after namespace peer labelled packetwalk.io/policy-lane-1=admitted; "
                          "allow-clients-a-b updated in place to the spec of allow-from-client-a")
    assert Change(LABEL_POD, "server", "x-").describe() == "pod server label x removed"
    case = POLICY_CASES["pod-relabelled"]
    assert case.paths == (("client-b", "pod-ip", "http"), ("client-a", "pod-ip", "http"))
    assert len(case.every_cell) == 5


def test_lanes_are_alike_apart_from_their_names_and_label():
    objects = {o["metadata"]["name"]: (g, o) for g, o in plan(RUN, NODES) if o["kind"] == "Pod"}
    for lane in POLICY_LANES:
        for role in ("server", "client-a", "client-b", "client-peer"):
            group, pod = objects[policy_pod_name(role, lane)]
            assert group == POLICY and pod["metadata"]["labels"][LANE_LABEL] == lane
            node = pod["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
                "matchFields"][0]["values"][0]
            assert node == ("pw-worker2" if role == "server" else "pw-worker")
            namespace = RUN.peer_namespace if role == "client-peer" else RUN.namespace
            assert pod["metadata"]["namespace"] == namespace
        service = next(o for g, o in plan(RUN, NODES) if o["kind"] == "Service"
                   and o["metadata"]["name"] == policy_pod_name("server", lane))
        assert service["spec"]["selector"][LANE_LABEL] == lane
    server = objects["policy-server"][1]
    named = {p["name"]: p["containerPort"] for c in server["spec"]["containers"]
             for p in c["ports"]}
    assert named == {"http": 8080, "udp": 8081, "alt": 8082}  # what named-port rules resolve
    assert policy_pod_name("client-b", "2") == "policy-client-b-2"


def test_two_cases_never_share_a_lane():
    run = secrets.token_hex(4)
    with free_lane(run) as first, free_lane(run) as second:
        assert {first, second} == set(POLICY_LANES)
    with free_lane(run) as again:
        assert again == POLICY_LANES[0]


def test_covering_cidr_and_label_edits():
    assert covering(["10.244.1.5", "10.244.1.9", "10.244.1.12"]) == "10.244.1.0/28"
    assert covering(["10.244.2.3"]) == "10.244.2.3/32"
    assert covering(["10.244.1.255", "10.244.2.0"]) == "10.244.0.0/22"
    assert label_edit("packetwalk.io/access=a") == ("packetwalk.io/access", "a")
    assert label_edit("packetwalk.io/policy-exempt-") == ("packetwalk.io/policy-exempt", None)
    with pytest.raises(ValueError):
        label_edit("no-value")


def observation(cls):
    return Observation("policy-client-b (10.244.1.7) -> 10.244.2.9:8080/tcp", cls, 0.01, "curl",
                       "", src_pod="policy-client-b")


def test_wrong_cells_print_as_a_table():
    cells = (Cell("client-a", "pod-ip", "http", "open"),
             Cell("client-b", "pod-ip", "http", "blocked"))
    last = {cells[0]: observation("OK"), cells[1]: observation("OK")}
    lines = truth_table(cells, [cells[1]], last)
    assert lines[0].split() == ["cell", "expected", "observed"]
    assert lines[1].split()[:6] == ["ok", "client-a", "->", "pod-ip:http", "open", "OK"]
    assert lines[2].split()[:6] == ["WRONG", "client-b", "->", "pod-ip:http", "blocked", "OK"]


def test_the_time_to_enforce_is_recorded_in_a_field_and_in_words():
    record = ProbeRecord(hop="network_policy", detail="1 of 1 tries failed")
    timed = enforced_record(record, 1.8)
    assert timed.enforced_after == 1.8
    assert timed.detail == "policy enforced after 1.8 s; 1 of 1 tries failed"
    assert ProbeRecord.from_json(timed.to_json()) == timed
    assert enforced_record(record, None) == record


def test_cells_make_their_other_attempts_at_once_unless_a_refusal_settled_them():
    from packetwalk.inventory import Inventory, Pod
    from packetwalk.policywalk import PolicyWalk
    from packetwalk.probes import ExecResult, Prober

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            node, ip, 8080)
            for role, node, ip in (("client-a", "pw-worker", "10.244.1.5"),
                                   ("client-b", "pw-worker", "10.244.1.7"),
                                   ("server", "pw-worker2", "10.244.2.9"))}
    asked = []

    def fake_exec(src, command, timeout):
        asked.append((src.pod, command[-1]))
        if "/dev/udp/" in command[-1]:  # client-b's UDP: dropped once more, then let through
            return ExecResult(0, "124 3000000\n0 4000 policy-server\n", "", 3.0)
        return ExecResult(0, "0 3000 policy-server\n0 5000 policy-server\n", "", 0.01)

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods, {})
    walk = PolicyWalk(None, inventory, Prober(fake_exec), [].append, attempts=3)
    opened = Cell("client-a", "pod-ip", "http", "open")
    refused = Cell("client-b", "pod-ip", "http", "blocked")
    dropped = Cell("client-b", "pod-ip", "udp", "blocked")
    first = {opened: observation("OK"), refused: observation("REFUSED"),
             dropped: observation("TIMEOUT")}
    judged = walk.attempted((opened, refused, dropped), first)
    assert sorted(pod for pod, _ in asked) == ["policy-client-a", "policy-client-b"]
    assert all("&" in script for _, script in asked)  # the other attempts at once, in one exec
    assert "--connect-timeout 2 " in next(s for p, s in asked if p == "policy-client-a")
    assert judged[refused].cls == "REFUSED" and judged[refused].attempt_classes == []
    assert judged[opened].attempt_classes == ["OK"] * 3
    leaky = judged[dropped]
    assert leaky.cls == "OK" and leaky.attempt_classes == ["TIMEOUT", "TIMEOUT", "OK"]
    record = ProbeRecord(expected=("REFUSED", "TIMEOUT", "UNREACHABLE")).observed(
        leaky, False, frozenset({"REFUSED", "TIMEOUT", "UNREACHABLE"}))
    assert record.cell().words() == "flaky: 1 of 3 attempts failed (OK)"
    lines = truth_table((dropped,), [dropped], judged, {dropped: record.cell().words()})
    assert lines[1].split()[:7] == ["FLAKY", "client-b", "->", "pod-ip:udp", "blocked", "OK",
                                    "[flaky:"]


TIMED_OUT = (ExecResult(28, "", "curl: (28) Connection timed out after 2001 ms", 2.0),
             ExecResult(0, "124 2000000\n" * 2, "", 2.0))  # the 2 more attempts at once


def _lane_walk(answers=TIMED_OUT, **kwargs):
    """A lane's walk whose curl probes get answers[0] and whose attempts script gets
    answers[1] (by default the path under the lane is down: every ask times out).
    Returns the walk and the execs it made."""
    from packetwalk.inventory import Inventory, Pod
    from packetwalk.policywalk import PolicyWalk
    from packetwalk.probes import Prober

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            node, ip, 8080)
            for role, node, ip in (("client-a", "pw-worker", "10.244.1.5"),
                                   ("client-b", "pw-worker", "10.244.1.6"),
                                   ("server", "pw-worker2", "10.244.2.9"))}
    execs = []

    def fake_exec(src, command, timeout):
        execs.append(command[0])
        return answers[0] if command[0] == "curl" else answers[1]

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods, {})
    return PolicyWalk(None, inventory, Prober(fake_exec), [].append, timeout=20, attempts=3,
                      **kwargs), execs


def _blocked_baseline(walk, case: str, cell: Cell) -> tuple[list[float], Exception]:
    """`walk`'s baseline of `cell`, blocked: the bounds its polls were given (each poll
    lasting 10 ms instead), and the HopBlocked it raised."""
    from packetwalk import policywalk
    from packetwalk.policywalk import BASELINE
    from packetwalk.walk import HopBlocked

    waited, real = [], policywalk.wait_for

    def timed(what, probe, timeout, interval):
        waited.append(timeout)
        return real(what, probe, timeout=0.01, interval=0.001)

    policywalk.wait_for = timed
    try:
        with pytest.raises(HopBlocked) as blocked:
            walk._converge(case, BASELINE, (cell,))
    finally:
        policywalk.wait_for = real
    return waited, blocked.value


def test_a_lane_seen_blocked_probes_its_next_baseline_once_and_reuses_the_narrowing():
    from packetwalk import policywalk
    from packetwalk.policywalk import BASELINE, LaneBlock
    from packetwalk.walk import HopBlocked

    cell = Cell("client-a", "pod-ip", "http", "open")
    # The lane's first blocked case, right after the lane changed: polled (the full
    # timeout: the enforcer may still be undoing that change), then marked. (A second
    # ahead: the bound is clamped to the timeout, whatever this test's own delay.)
    marked = []
    first, _ = _lane_walk(on_blocked=marked.append, lane_changed=time.time() + 1)
    waited, seen = _blocked_baseline(first, "first", cell)
    assert waited == [20] and len(marked) == 1
    block = LaneBlock.from_json(marked[0].to_json())  # as the next worker reads it
    assert block == marked[0] and block.case == "first" and block.cell == cell.path
    # A later case of the lane: no poll, one probe (no more attempts), no narrowing,
    # the first case's finding with this case's own probe beside it.
    later, execs = _lane_walk(lane_blocks=(block,), on_blocked=marked.append)
    real = policywalk.wait_for
    policywalk.wait_for = lambda *a, **k: pytest.fail("a blocked lane's baseline was polled")
    try:
        with pytest.raises(HopBlocked) as again:
            later._converge("later", BASELINE, (cell,))
    finally:
        policywalk.wait_for = real
    assert len(execs) == 1 and len(marked) == 1
    assert again.value.blocked.hop == seen.blocked.hop
    assert str(again.value).startswith(str(seen))
    assert str(again.value).endswith("narrowed in case first, this case's own probe of that cell: TIMEOUT")
    # With the diagnosis on, the later case's report carries the first case's
    # narrowing, saying where it was seen.
    from dataclasses import replace

    class Notes(list):
        note = list.append

    notes = Notes()
    narrowed = replace(block, verdict="pod network fails across nodes", bisection=("pod IP: TIMEOUT",))
    with_notes, _ = _lane_walk(lane_blocks=(LaneBlock.from_json(narrowed.to_json()),), diagnoser=notes)
    with pytest.raises(HopBlocked):
        with_notes._converge("later", BASELINE, (cell,))
    assert [(n.verdict, n.bisection) for n in notes] == [
        ("pod network fails across nodes",
         ("pod IP: TIMEOUT", "narrowed in case first, this case's own probe of that cell: TIMEOUT"))]
    # The cell failing otherwise than it did (REFUSED, not TIMEOUT: the lane's previous
    # case's policy still in force for a moment) is polled, briefly, and narrowed anew.
    other, _ = _lane_walk(lane_blocks=(replace(block, cls="REFUSED"),))
    waited, _ = _blocked_baseline(other, "other", cell)
    assert waited == [policywalk.BLOCKED_BASELINE_TIMEOUT]
    # A marker cut short, or of another version, is no marker.
    assert LaneBlock.from_json('{"case": "fir') is None and LaneBlock.from_json("") is None


def test_a_phase_holds_only_when_every_attempt_agrees_so_a_settling_enforcer_gets_more_time():
    from packetwalk import policywalk
    from packetwalk.inventory import Inventory, Pod
    from packetwalk.policywalk import PolicyWalk
    from packetwalk.probes import ExecResult, Prober

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            node, ip, 8080)
            for role, node, ip in (("client-a", "pw-worker", "10.244.1.5"),
                                   ("server", "pw-worker2", "10.244.2.9"))}
    rounds = []

    def fake_exec(src, command, timeout):
        if command[0] == "curl":  # the poll's own probe: let through every time
            return ExecResult(0, "policy-server", "", 0.01)
        rounds.append(command)  # the other attempts: one refused in the first round only
        if len(rounds) == 1:
            return ExecResult(0, "0 3000 policy-server\n7 2000 Failed to connect: Connection refused\n",
                              "", 0.01)
        return ExecResult(0, "0 3000 policy-server\n0 2000 policy-server\n", "", 0.01)

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods, {})
    records = []
    walk = PolicyWalk(None, inventory, Prober(fake_exec), records.append, timeout=5, attempts=3)
    real = policywalk.wait_for
    policywalk.wait_for = lambda what, probe, timeout, interval: real(what, probe, timeout=timeout,
                                                                     interval=0.001)
    try:
        walk._converge("c", "with p", (Cell("client-a", "pod-ip", "http", "open"),), time.monotonic())
    finally:
        policywalk.wait_for = real
    assert len(rounds) == 2  # the round with a refusal did not hold; the next did
    assert records[-1].ok and records[-1].attempt_classes == ("OK", "OK", "OK")


def test_a_cell_walks_the_family_of_its_sources_primary_address():
    """On an IPv6-first cluster a cell dials IPv6 and looks names up as AAAA; a Service
    listing IPv4 first does not pull it into IPv4."""
    from packetwalk.inventory import Inventory, Pod, Service
    from packetwalk.policywalk import PolicyWalk
    from packetwalk.probes import ExecResult, Prober

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            "pw-worker", v6, 8080, ips=(v6, v4))
            for role, v6, v4 in (("client-a", "fd10::5", "10.244.1.5"),
                                 ("server", "fd10::9", "10.244.2.9"))}
    service = Service("policy-server", RUN.namespace, "10.96.0.9", {"http": 8080}, {},
                      ("policy-server",), cluster_ips=("10.96.0.9", "fd10:96::9"))
    commands = []

    def fake_exec(src, command, timeout):
        commands.append(command)
        return ExecResult(0, ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n"
                             "policy-server.x.svc.cluster.local. 5 IN AAAA fd10:96::9\n", "", 0.01)

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods,
                          {"policy-server": service})
    walk = PolicyWalk(None, inventory, Prober(fake_exec), [].append)
    assert walk.attempt(Cell("client-a", "cluster-ip", "http", "open")).to.ip == "fd10:96::9"
    assert walk.attempt(Cell("client-a", "pod-ip", "http", "open")).to.ip == "fd10::9"
    seen = walk.probe(Cell("client-a", "dns", "http", "open"))
    assert commands[-1][-1] == "AAAA" and seen.cls == "OK" and seen.answers == ["fd10:96::9"]


def _unenforcing_walk(refuse=(), **kwargs):
    """A lane whose enforcer polices nothing (every probe answers) but the pods in `refuse`."""
    from packetwalk.inventory import Inventory, Pod
    from packetwalk.policywalk import PolicyWalk
    from packetwalk.probes import ExecResult, Prober

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            node, ip, 8080, ips=(ip, ip6))
            for role, node, ip, ip6 in (("client-a", "pw-worker", "10.244.1.5", "fd10::1:5"),
                                        ("client-b", "pw-worker", "10.244.1.7", "fd10::1:7"),
                                        ("client-peer", "pw-worker", "10.244.1.6", "fd10::1:6"),
                                        ("server", "pw-worker2", "10.244.2.9", "fd10::2:9"))}

    def fake_exec(src, command, timeout):
        if src.pod in refuse:
            return ExecResult(7, "", "curl: (7) Failed to connect: Connection refused", 0.01)
        return ExecResult(0, "policy-server", "", 0.01)

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods, {})
    return PolicyWalk(None, inventory, Prober(fake_exec), [].append, timeout=20, **kwargs)


def _converged(walk, cells):
    from packetwalk import policywalk
    from packetwalk.walk import HopFailure

    waited, real = [], policywalk.wait_for

    def timed(what, probe, timeout, interval):  # only the timeout asked for is looked at
        waited.append(timeout)
        return real(what, probe, timeout=0.01, interval=0.001)

    policywalk.wait_for = timed
    try:
        with pytest.raises(HopFailure) as failure:
            walk._converge("default-deny-ingress", "with deny-ingress", cells, 0.0)
    finally:
        policywalk.wait_for = real
    return waited, str(failure.value)


def test_a_family_whose_policies_block_nothing_is_polled_briefly_after_two_cases():
    from packetwalk.policywalk import UNENFORCED_TIMEOUT

    blocked = (Cell("client-a", "pod-ip", "http", "blocked"),)
    seen = []
    waited, message = _converged(_unenforcing_walk(family="ipv6", family_in_id=True,
                                                   on_unenforced=seen.append), blocked)
    assert waited == [20] and seen == ["default-deny-ingress"]
    assert "fd10::1:5" in message and "fd10::2:9" in message  # walked in its family
    # A case that blocks part of what it should is enforcement that exists: not counted.
    seen.clear()
    _converged(_unenforcing_walk(refuse=("policy-client-b",), on_unenforced=seen.append),
               blocked + (Cell("client-b", "pod-ip", "http", "blocked"),))
    assert seen == []
    # Later cases of that family: the short poll, and the failure says why.
    waited, message = _converged(_unenforcing_walk(family="ipv6", family_in_id=True,
                                                   unenforced=True), blocked)
    assert waited == [UNENFORCED_TIMEOUT]
    assert ("after 4s of polling (lane 1; not 20s: 2 earlier cases in IPv6 blocked nothing "
            "they should)") in message


def test_ip_blocks_are_written_in_the_cases_family():
    from packetwalk.families import host_cidr

    assert host_cidr("10.244.1.7") == "10.244.1.7/32" and host_cidr("fd10::1:7") == "fd10::1:7/128"
    walk = _unenforcing_walk(family="ipv6")
    assert walk._values("allow-ipblock-except-client-b") == {
        "CLIENTS_CIDR": "fd10::1:4/126", "CLIENT_B_HOST": "fd10::1:7/128"}
    assert _unenforcing_walk()._values("allow-ipblock-client-b-http") == {"CLIENT_B_HOST": "10.244.1.7/32"}


def test_a_baseline_waits_out_the_policy_timeout_from_the_lanes_last_change_only():
    from packetwalk.policywalk import QUIET_BASELINE_TIMEOUT, baseline_timeout

    assert QUIET_BASELINE_TIMEOUT < 20
    assert baseline_timeout(20, None, 1000.0) == QUIET_BASELINE_TIMEOUT  # never changed
    assert baseline_timeout(20, 1000.0, 1000.0) == 20  # changed just now
    assert baseline_timeout(20, 1000.0, 1005.0) == 15
    assert baseline_timeout(20, 1000.0, 1030.0) == QUIET_BASELINE_TIMEOUT  # long ago
    assert baseline_timeout(20, 1001.0, 1000.0) == 20  # another worker's clock: no more
    assert baseline_timeout(2, None, 1000.0) == 2  # --policy-timeout below the floor


def test_a_lanes_first_case_polls_a_failing_baseline_briefly_and_its_policies_mark_the_lane():
    """No case has changed the lane yet: nothing of its own can still be undone, so a
    failing baseline is a path fault, polled QUIET_BASELINE_TIMEOUT, not 20 s."""
    from packetwalk import policywalk

    cell = Cell("client-a", "pod-ip", "http", "open")
    marks = []
    walk, _ = _lane_walk(on_change=marks.append)
    waited, _ = _blocked_baseline(walk, "first", cell)
    assert waited == [policywalk.QUIET_BASELINE_TIMEOUT]
    # Restoring labels marks the lane first (removing nothing marks nothing).
    walk.remove([])
    assert marks == []
    before = time.time()
    walk._set_label = lambda *a: marks.append("labelled")
    walk._restore({("pod", "client-a", "k"): None})
    assert len(marks) == 2 and marks[0] >= before and marks[1] == "labelled"


def test_a_failing_baseline_round_starts_the_narrowing_the_block_then_reports():
    """The narrowing of a lane's blocked baseline runs beside its polling and attempts:
    its steps are asked while the baseline is still polled, once, and their results are
    what the block says."""
    import threading

    from packetwalk import policywalk
    from packetwalk.diagnose.diagnoser import Diagnoser
    from packetwalk.inventory import Inventory, Pod, pod_name
    from packetwalk.policywalk import BASELINE, PolicyWalk
    from packetwalk.probes import Prober
    from packetwalk.walk import HopBlocked

    pods = {policy_pod_name(role, "1"): Pod(policy_pod_name(role, "1"), RUN.namespace, role,
                                            node, ip, 8080)
            for role, node, ip in (("client-a", "pw-worker", "10.244.1.5"),
                                   ("server", "pw-worker2", "10.244.2.9"))}
    near = pod_name("client", NODES[1])  # the narrowing's same-node client
    pods[near] = Pod(near, RUN.namespace, "client", "pw-worker2", "10.244.2.3", 8080)
    lock, asked, polled = threading.Lock(), [], []

    def fake_exec(src, command, timeout):
        with lock:
            asked.append((src.pod, len(polled)))
        if src.pod == near:
            return ExecResult(0, "policy-server", "", 0.01)  # from beside it: answers
        return TIMED_OUT[0] if command[0] == "curl" else TIMED_OUT[1]

    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None, pods, {})
    prober, notes = Prober(fake_exec), []
    walk = PolicyWalk(None, inventory, prober, [].append, timeout=20, attempts=3,
                      diagnoser=Diagnoser(inventory, prober, None, notes.append, "t"))
    real = policywalk.wait_for

    def rounds(what, probe, timeout, interval):  # three rounds, none holding
        for _ in range(3):
            polled.append(probe())
        raise policywalk.WaitTimeout(what)

    policywalk.wait_for = rounds
    try:
        with pytest.raises(HopBlocked) as blocked:
            walk._converge("first", BASELINE, (Cell("client-a", "pod-ip", "http", "open"),))
    finally:
        policywalk.wait_for = real
    # Asked once, as the first round was judged: before the second round began.
    assert [rounds for pod, rounds in asked if pod == near] == [0], asked
    assert f"pod IP 10.244.2.9:8080/tcp from {near} (same-node client): OK" in notes[0].bisection
    assert blocked.value.blocked.hop.name == "pod_ip"


def test_a_blocked_lane_whose_cell_answers_again_is_judged_as_usual():
    """The lane's blocked cell answers now (a fault healed mid-run): the case's whole
    baseline is probed and judged with its attempts, not declared blocked."""
    from packetwalk.diagnose.blocking import Blocked
    from packetwalk.hops import HOPS
    from packetwalk.policywalk import BASELINE, LaneBlock

    cell = Cell("client-a", "pod-ip", "http", "open")
    block = LaneBlock("first", cell.path, None, Blocked(HOPS["pod_ip"], "cross-node", "tcp", "x"),
                      "TIMEOUT")
    walk, execs = _lane_walk((ExecResult(0, "policy-server", "", 0.01),
                              ExecResult(0, "0 3000 policy-server\n0 2000 policy-server\n", "", 0.01)),
                             lane_blocks=(block,))
    walk._converge("later", BASELINE, (cell,))  # no HopBlocked
    # The blocked cell alone, then the round, then its 2 more attempts in one exec.
    assert execs == ["curl", "curl", "bash"], execs


def test_a_lane_keeps_every_narrowed_cell_so_alternating_cases_are_each_blocked_at_once(tmp_path):
    """Cases alternate between client-a's and client-b's cells: with every narrowed cell
    kept in the lane's marker, a case whose cell was narrowed before (not necessarily
    by the lane's last case) probes it once and is blocked, with no poll and no
    narrowing; the marker keeps one line per cell and family, the newest."""
    from dataclasses import replace

    from fixtures.policy import _lane_blocks, _remember
    from packetwalk import policywalk
    from packetwalk.diagnose.blocking import Blocked
    from packetwalk.hops import HOPS
    from packetwalk.policywalk import BASELINE, LaneBlock
    from packetwalk.walk import HopBlocked

    a, b = Cell("client-a", "pod-ip", "http", "open"), Cell("client-b", "pod-ip", "http", "open")
    marker = tmp_path / "lane-1-blocked"
    for case, cell in (("first", a), ("second", b)):
        _remember(marker, LaneBlock(case, cell.path, None,
                                    Blocked(HOPS["pod_ip"], "cross-node", "tcp", "x"), "TIMEOUT"))
    _remember(marker, replace(_lane_blocks(marker)[0], case="third"))  # a's anew: replaced
    kept = _lane_blocks(marker)
    assert [(k.case, k.cell) for k in kept] == [("second", b.path), ("third", a.path)]
    # A line cut short reads as none; the others stand.
    marker.write_text(marker.read_text() + '{"case": "fou')
    assert _lane_blocks(marker) == kept and _lane_blocks(tmp_path / "none") == ()

    real = policywalk.wait_for
    policywalk.wait_for = lambda *a, **k: pytest.fail("a known cell's baseline was polled")
    try:
        for cells, named in (((a,), "third"), ((b, a), "second")):
            later, execs = _lane_walk(lane_blocks=kept)
            with pytest.raises(HopBlocked) as seen:
                later._converge("later", BASELINE, cells)
            assert execs == ["curl"], execs  # one probe of the known cell, nothing else
            assert f"narrowed in case {named}," in str(seen.value)
    finally:
        policywalk.wait_for = real
    # Another family's narrowing of the same cell is not this case's.
    assert _lane_walk(lane_blocks=kept, family="ipv6")[0]._known_cell((a,)) is None


CILIUM_LINKS = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
                "2: cilium_host@cilium_net: <BROADCAST,MULTICAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc "
                "noqueue state UP\n"
                "3: eth0@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\n")


def _with_host(walk):
    """The walk's inventory with the run's hostNetwork pod on the server's node."""
    from packetwalk.inventory import Pod, pod_name

    host = Pod(pod_name("host", NODES[1]), RUN.namespace, "host", "pw-worker2", "10.250.0.12", 8080)
    walk.inventory.pods[host.name] = host
    return walk


@pytest.mark.parametrize(("links", "skips"), [(CILIUM_LINKS, True),
                                              (CILIUM_LINKS.replace("cilium_host", "kube-bridge"), False)])
def test_a_case_whose_ip_block_names_pods_skips_on_a_node_whose_cni_never_matches_them(links, skips):
    """Cilium documents that its CIDR rules never select its own endpoints: the three
    ipBlock cases say so in a skip on a node that shows cilium's links; on another
    CNI's node, or with no node view at all, they run."""
    from packetwalk.probes import ExecResult

    walk, execs = _lane_walk((None, ExecResult(0, links, "", 0.01)))
    case = POLICY_CASES["ipblock-except"]
    assert walk.unmet(case) is None and execs == []  # no hostNetwork pod: it runs
    why = _with_host(walk).unmet(case)
    assert execs == ["sh"]
    if skips:
        assert why.startswith("node pw-worker2 runs cilium (its links show it): Cilium's CIDR "
                              "rules never select the endpoints it manages"), why
        assert "cilium/cilium#9209" in why and "names pod IPs" in why
    else:
        assert why is None
    # A case without such an ipBlock never asks.
    assert walk.unmet(POLICY_CASES["default-deny-ingress"]) is None and execs == ["sh"]
    # The links unread (the exec failed): the case runs.
    broken, _ = _lane_walk((None, ExecResult(1, "", "exec failed", 0.01)))
    assert _with_host(broken).unmet(case) is None
