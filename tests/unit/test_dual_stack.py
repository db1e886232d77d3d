"""A dual-stack run: addresses per family from inventory to probe, the narrowing kept in
the failing family, the verdict's and the blocked line's family, IPv6 probes."""

import http.server
import socket
import subprocess
import threading

import pytest

from packetwalk.diagnose import narrowing as nw
from packetwalk.diagnose.blocking import Blocked
from packetwalk.families import IPV4, IPV6
from packetwalk.hops import HOPS
from packetwalk.inventory import DnsServer, Inventory, NoAddress, Pod, Service
from packetwalk.placement import Node, build_placements
from packetwalk.probes import (
    DNS,
    OK,
    ExecResult,
    Prober,
    Target,
    ask_script,
    classify_dig,
    parse_tries,
)
from packetwalk.records import ProbeRecord
from packetwalk.verdict import for_failure, summarize
from packetwalk.walk import HopFailure, Walk
from packetwalk.workloads import plan, take_inventory
from tests.unit.test_workloads import NODES, RUN

A = Node("pw-worker", "10.250.0.11", "pw-worker", ("10.250.0.11", "fd10:250::11"))
B = Node("pw-worker2", "10.250.0.12", "pw-worker2", ("10.250.0.12", "fd10:250::12"))


def pod(name, role, node, v4, v6=None, port=8080):
    return Pod(name, "pw-1", role, node, v4, port, ips=(v4, v6) if v6 else ())


def inventory() -> Inventory:
    pods = {p.name: p for p in (
        pod("client-pw-worker", "client", "pw-worker", "10.244.1.5", "fd10:244:0:1::5"),
        pod("client-pw-worker2", "client", "pw-worker2", "10.244.2.5", "fd10:244:0:2::5"),
        pod("server-pw-worker", "server", "pw-worker", "10.244.1.6", "fd10:244:0:1::6"),
        # The server on pw-worker2 got no IPv6: its IPv6 twins cannot be walked.
        pod("server-pw-worker2", "server", "pw-worker2", "10.244.2.7"),
        pod("host-pw-worker", "host", "pw-worker", "10.250.0.11", "fd10:250::11", 18080))}
    services = {
        "servers": Service("servers", "pw-1", "10.96.12.8", {"http": 80, "udp": 81}, {},
                           ("server-pw-worker", "server-pw-worker2"),
                           cluster_ips=("10.96.12.8", "fd10:96::8")),
        "server-pw-worker": Service("server-pw-worker", "pw-1", "10.96.12.6",
                                    {"http": 80, "udp": 81}, {"http": 30080, "udp": 30081},
                                    ("server-pw-worker",), cluster_ips=("10.96.12.6", "fd10:96::6"))}
    dns = [DnsServer("coredns-a", "kube-system", "pw-worker2", "10.244.2.3",
                     ("10.244.2.3", "fd10:244:0:2::3"))]
    return Inventory("1", "pw-1", "pw-1-peer", [A, B], "10.96.0.10", pods, services,
                     groups={name: "core" for name in pods}, dns_servers=dns)


def test_every_end_has_its_address_per_family_and_says_when_it_has_none():
    inv = inventory()
    server = inv.pods["server-pw-worker"]
    assert server.target("tcp", IPV6) == Target("fd10:244:0:1::6", 8080, "tcp",
                                                "pod server-pw-worker on pw-worker")
    assert server.target("udp").ip == "10.244.1.6"  # no family: the primary, as before
    assert inv.services["servers"].target("udp", IPV6).ip == "fd10:96::8"
    assert inv.services["server-pw-worker"].node_port_target(A, "tcp", IPV6).ip == "fd10:250::11"
    with pytest.raises(NoAddress, match=r"pod server-pw-worker2 has no IPv6 address \(it has 10.244.2.7\)"):
        inv.pods["server-pw-worker2"].target("tcp", IPV6)
    headless = Service("servers-headless", "pw-1", "None", {"http": 8080}, {}, ())
    assert headless.cluster_ips == ()
    with pytest.raises(NoAddress):
        headless.ip_of(IPV4)
    assert Inventory.from_json(inv.to_json()) == inv


def test_the_run_asks_for_both_families_only_on_a_dual_stack_cluster():
    services = [o for _, o in plan(RUN, NODES, dual_stack=True) if o["kind"] == "Service"]
    assert services and all(s["spec"]["ipFamilyPolicy"] == "PreferDualStack" for s in services)
    assert not any("ipFamilyPolicy" in o["spec"] for _, o in plan(RUN, NODES)
                   if o["kind"] == "Service")


def test_the_inventory_records_each_pods_and_services_addresses_of_each_family():
    objects = plan(RUN, NODES, dual_stack=True)
    ready = {"server-pw-worker": {"spec": {"nodeName": "pw-worker"}, "status": {
        "podIP": "10.244.1.2", "podIPs": [{"ip": "10.244.1.2"}, {"ip": "fd10:244:0:1::2"}]}}}
    services = [{"metadata": {"name": "servers", "namespace": RUN.namespace},
                 "spec": {"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5", "fd10:96::5"],
                          "selector": {"packetwalk.io/role": "server"},
                          "ports": [{"name": "http", "port": 8080}]}},
                {"metadata": {"name": "servers-headless", "namespace": RUN.namespace},
                 "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                          "selector": {"packetwalk.io/role": "server"},
                          "ports": [{"name": "http", "port": 8080}]}}]
    inv = take_inventory(RUN, NODES, "10.96.0.10", objects, ready, services, {})
    assert inv.pods["server-pw-worker"].ips == ("10.244.1.2", "fd10:244:0:1::2")
    assert inv.services["servers"].ip_of(IPV6) == "fd10:96::5"
    assert inv.services["servers-headless"].cluster_ips == ()


def walk_in(family, outputs, hop="cluster_ip", protocol="udp", records=None):
    commands = []

    def fake_exec(src, command, timeout):
        commands.append(command)
        return outputs(command)

    walk = Walk(inventory(), Prober(fake_exec), HOPS[hop], build_placements([A, B])["same-node"],
                None, protocol, (records if records is not None else []).append, {},
                family=family, family_in_id=True)
    return walk, commands


def test_an_ipv6_walk_dials_ipv6_and_asks_for_aaaa():
    walk, commands = walk_in(IPV6, lambda c: ExecResult(
        0, ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n"
           "servers.pw-1.svc.cluster.local. 30 IN AAAA fd10:96::8\n", "", 0.01),
        hop="dns_service_name")
    seen = walk.resolve(walk.client, "servers", "udp", records=[walk.address(walk.service("servers"))])
    assert seen.cls == OK and seen.answers == ["fd10:96::8"]
    assert commands[0][-2:] == ["servers", "AAAA"]
    walk, commands = walk_in(IPV6, lambda c: ExecResult(0, "0 900 server-pw-worker\n", "", 0.01))
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname",
                    answer="server-pw-worker")
    assert seen.cls == OK and "/dev/udp/fd10:96::6/81" in commands[0][2]
    assert seen.probe == "client-pw-worker (fd10:244:0:1::5) -> fd10:96::6:81/udp"


def test_an_ipv6_echo_leaves_room_for_the_40_byte_header_and_a_link_below_1280_fails():
    for mtu, family, size in ((1450, IPV6, 1450 - 48 - 5), (1450, IPV4, 1450 - 28 - 5)):
        walk, commands = walk_in(family, lambda c, mtu=mtu: ExecResult(
            0, f"{mtu}\n" if c[0] == "sh" else "0 900 x\n", "", 0.01), hop="mtu")
        walk.echo_near_mtu(walk.client, walk.pod_ip(walk.server, "udp"))
        payload = commands[1][2].split("printf %s ")[1].split(" >&3")[0]
        assert len(payload.strip('"')) == size + len("echo ")
    records = []
    walk, _ = walk_in(IPV6, lambda c: ExecResult(0, "1200\n", "", 0.01), hop="mtu", records=records)
    with pytest.raises(HopFailure, match=r"is 1200\n  expected: at least 1280"):
        walk.echo_near_mtu(walk.client, walk.pod_ip(walk.server, "udp"))
    assert records[0].cls == "WRONG_CONFIG" and records[0].family == IPV6


def test_a_failure_story_names_the_family_in_its_title_and_next_step():
    walk, _ = walk_in(IPV6, lambda c: ExecResult(124, "124 3000000 \n", "", 3.0))
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname")
    story = walk.failure(seen)
    assert story.startswith("cluster_ip [same-node-udp-ipv6]: Service translation")
    assert "try the PodIP: test_pod_ip[same-node-udp-ipv6]" in story
    assert "Service translation (ClusterIP) fails (udp, IPv6) on pw-worker" in story


def test_the_narrowing_stays_in_the_failing_family():
    inv = inventory()
    client = inv.pods["client-pw-worker"]
    steps = nw.plan(nw.Attempt(client, Target("fd10:96::8", 81, "udp"), family=IPV6), inv)
    # server-pw-worker2 has no IPv6: left out, not dialed over IPv4.
    assert [(s.kind, s.change, s.to.ip) for s in steps] == [
        (nw.POD_IP, "", "fd10:244:0:1::6"), (nw.CLUSTER_IP, nw.FROM_NODE, "fd10:96::8")]
    dns = nw.plan(nw.Attempt(client, Target("servers", 53, "udp"), "servers", family=IPV6), inv)
    assert {s.to.ip for s in dns if s.kind == nw.DNS_SERVER} == {"fd10:244:0:2::3"}
    assert nw.dialed(nw.Attempt(client, Target("fd10:250::11", 30080, "tcp")), inv).kind == nw.NODE_PORT


def test_the_verdict_confines_a_failure_to_its_family():
    def rec(family, placement, ok):
        return ProbeRecord(hop="pod_ip", placement=placement, protocol="tcp", family=family, ok=ok,
                           cls="OK" if ok else "TIMEOUT", client_node="w1",
                           server_node="w2" if placement == "cross-node" else "w1")
    records = [rec(f, p, not (f == IPV6 and p == "cross-node"))
               for f in (IPV4, IPV6) for p in ("same-node", "cross-node")]
    assert summarize(records).startswith(
        "pod network (PodIP) is broken for IPv6 only, across nodes only (w1 -> w2) (TIMEOUT)")
    both = [rec(f, "cross-node", False) for f in (IPV4, IPV6)] + [rec(IPV4, "same-node", True)]
    assert "for IPv" not in summarize(both)
    assert for_failure(records[3]) == ("pod network (PodIP) fails (tcp, IPv6) from w1 to w2: "
                                       "TIMEOUT; look at CNI bridge/veth, routes between nodes")


def test_a_blocked_line_names_the_family_and_its_twin():
    blocked = Blocked(HOPS["pod_ip"], "cross-node", "udp", "pod IP x: TIMEOUT", family=IPV6)
    assert blocked.line() == ("blocked: the pod network (PodIP) across nodes for IPv6 fails "
                              "(test_pod_ip[cross-node-udp-ipv6]): pod IP x: TIMEOUT")
    assert Blocked(HOPS["pod_ip"], "cross-node", "udp", "x").test_id == "test_pod_ip[cross-node-udp]"


def test_dig_keeps_only_the_records_of_the_asked_type():
    answer = (";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n"
              "servers-headless.pw-1.svc.cluster.local. 30 IN AAAA fd10:244:0:1::6\n"
              "servers-headless.pw-1.svc.cluster.local. 30 IN AAAA fd10:244:0:2::7\n")
    assert classify_dig(0, answer, "AAAA") == (OK, ["fd10:244:0:1::6", "fd10:244:0:2::7"], "")
    assert classify_dig(0, answer, "A") == (DNS, [], "NOERROR but no A record")


def test_urls_bracket_an_ipv6_literal_and_dev_udp_takes_it_bare():
    script = ask_script("tcp", "fd10::6", 8080, "hostname", 1, 5)
    assert 'curl -sS -v --globoff --connect-timeout 3 --max-time 5 "http://[fd10::6]:8080/hostname"' in script
    assert "--globoff" not in ask_script("tcp", "10.0.0.6", 8080, "hostname", 1, 5)
    assert "/dev/udp/fd10::6/8081 " in ask_script("udp", "fd10::6", 8081, "hostname", 1, 3)
    commands = []
    Prober(lambda src, c, t: commands.append(c) or ExecResult(0, "x", "", 0.01)).http(
        SRC6, Target("fd10::6", 8080, "tcp"), "hostname")
    assert commands[0][3] == "--globoff" and commands[0][-1] == "http://[fd10::6]:8080/hostname"


SRC6 = inventory().pods["client-pw-worker"].source(IPV6)


def _loopback6() -> socket.socket | None:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::1", 0))
    except OSError:
        return None
    return sock


def test_bash_dev_udp_reaches_an_ipv6_literal():
    """The UDP ask as the pods run it, in this machine's bash, to a server on ::1."""
    sock = _loopback6()
    if sock is None:
        pytest.skip("this machine has no IPv6 loopback (::1): bash's /dev/udp with an IPv6 "
                    "literal cannot be tried here")
    port = sock.getsockname()[1]

    def answer():
        data, peer = sock.recvfrom(100)
        sock.sendto(b"saw " + peer[0].encode() + b" " + data, peer)

    threading.Thread(target=answer, daemon=True).start()
    done = subprocess.run(["bash", "-c", ask_script("udp", "::1", port, "hostname", 1, 2)],
                          capture_output=True, text=True, timeout=10, check=False)
    sock.close()
    tries = parse_tries(done.stdout, "udp")
    assert [(t.cls, t.answer) for t in tries] == [(OK, "saw ::1 hostname")], done.stdout + done.stderr


def test_curl_reaches_an_ipv6_literal():
    """The HTTP ask as the pods run it, with this machine's curl, to a server on ::1."""
    sock = _loopback6()
    if sock is None:
        pytest.skip("this machine has no IPv6 loopback (::1): curl with an IPv6 literal "
                    "cannot be tried here")
    sock.close()
    server = _Http6(("::1", 0), _Answer)
    threading.Thread(target=server.handle_request, daemon=True).start()
    port = server.server_address[1]
    done = subprocess.run(["bash", "-c", ask_script("tcp", "::1", port, "clientip", 1, 3)],
                          capture_output=True, text=True, timeout=15, check=False)
    server.server_close()
    tries = parse_tries(done.stdout, "tcp")
    assert [(t.cls, t.answer) for t in tries] == [(OK, "[::1]:client")], done.stdout + done.stderr


class _Http6(http.server.HTTPServer):
    address_family = socket.AF_INET6


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the name http.server calls
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f"[{self.client_address[0]}]:client".encode())

    def log_message(self, *args):
        pass


def test_junit_carries_the_family_walked():
    from packetwalk.report import junit
    assert junit.properties(HOPS["pod_ip"], {"placement": "cross-node", "protocol": "tcp",
                                             "family": IPV6})[-1] == ("family", IPV6)
    assert "family" not in dict(junit.properties(HOPS["network_policy"], {"variant": "x"}))


class _Around:
    """A Capture that records what around() is asked (the diagnoser's choice of family)."""

    def __init__(self):
        self.asked = []

    def around(self, test, client, servers, target, retry, service_ip, external=False,
               family=None):
        self.asked.append((target.ip, service_ip, family))
        return "captured"


def test_capture_follows_an_ipv6_probe_in_its_family():
    from packetwalk.diagnose.diagnoser import Diagnoser
    inv, capture = inventory(), _Around()
    client = inv.pods["client-pw-worker"]
    diagnoser = Diagnoser(inv, Prober(lambda *a: None), None, lambda d: None, "t",
                          capture=capture)
    six = nw.Attempt(client, Target("fd10:96::8", 81, "udp"), family=IPV6, retry=lambda: None)
    assert diagnoser._capture(six, [], nw.dialed(six, inv)) == "captured"
    # The Service evidence is read for the ClusterIP the probe dialed, not the primary.
    assert capture.asked == [("fd10:96::8", "fd10:96::8", IPV6)]
    # A lookup through the pod's resolver asks the DNS Service's primary (IPv4) address,
    # whatever record the IPv6 twin wants: its capture is in IPv4.
    lookup = nw.Attempt(client, Target("servers.pw-1", 53, "udp", "cluster DNS"), "servers.pw-1",
                        family=IPV6, retry=lambda: None)
    diagnoser._capture(lookup, [], nw.dialed(lookup, inv))
    assert capture.asked[-1] == ("10.96.0.10", "10.96.0.10", IPV4)
    four = nw.Attempt(client, Target("10.96.12.8", 81, "udp"), family=IPV4, retry=lambda: None)
    diagnoser._capture(four, [], nw.dialed(four, inv))
    assert capture.asked[-1] == ("10.96.12.8", "10.96.12.8", IPV4)


def test_a_single_stack_walk_records_no_family_so_its_words_are_as_before():
    records = []

    def outputs(command):
        return ExecResult(124, "124 3000000 \n", "", 3.0)

    walk = Walk(inventory(), Prober(lambda src, c, t: outputs(c)), HOPS["cluster_ip"],
                build_placements([A, B])["same-node"], None, "udp", records.append, {},
                family=IPV4, family_in_id=False)
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, "udp"), "hostname")
    assert records[0].family is None
    story = walk.failure(seen)
    assert story.startswith("cluster_ip [same-node-udp]: ")
    assert "Service translation (ClusterIP) fails (udp) on pw-worker" in story


def test_each_dns_server_is_asked_at_its_address_in_the_family():
    walk, commands = walk_in(IPV6, lambda c: ExecResult(
        0, ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n", "", 0.01),
        hop="dns_every_backend")
    inv = walk.inventory
    seen = walk.resolve_on_each(walk.client, "servers.pw-1.svc.cluster.local.", "udp",
                                ["fd10:96::8"], inv.dns_servers)
    assert commands[0][1] == "@fd10:244:0:2::3" and commands[0][-1] == "AAAA"
    assert seen.cls == DNS and seen.detail == "coredns-a (fd10:244:0:2::3) on pw-worker2: DNS"


def test_the_vantage_point_is_still_a_source_of_a_walk_without_a_family():
    """North-south hops without a family (LoadBalancer, Ingress): their walk starts from
    the vantage point too, which is no pod: OutsideWalk labels it by its address, which
    Vantage.source takes by keyword only (a pod's source() takes a family there)."""
    from packetwalk.outsidewalk import Egress, OutsideWalk
    from packetwalk.vantage import Vantage

    vantage = Vantage("pw-outside", ("ip", "netns", "exec", "pw-outside"))
    seen_from = []

    def fake_exec(src, command, timeout):
        seen_from.append(src.pod)
        return ExecResult(0, "server-pw-worker", "", 0.01)  # curl's body

    walk = OutsideWalk(inventory(), Prober(fake_exec), HOPS["node_port_external_cluster"],
                       build_placements([A, B])["same-node"], [].append, vantage, Egress())
    to = walk.node_port(walk.inventory.services["server-pw-worker"], A, "tcp")
    seen = walk.ask(walk.vantage, to, "hostname", answer="server-pw-worker")
    assert seen.cls == OK and seen_from == ["pw-outside"] and to.ip == "10.250.0.11"
    with pytest.raises(TypeError):
        vantage.source(IPV6)  # a family where a pod's goes: refused, not taken for an address
    assert vantage.source(ip="fd10::fe").label() == "pw-outside (fd10::fe)"


def test_bring_up_waits_for_the_endpoint_slice_of_each_family_of_a_service():
    from packetwalk.workloads import wanted_endpoints
    inv = inventory()
    inv.services["servers-headless"] = Service("servers-headless", "pw-1", "None", {"http": 8080},
                                               {}, ("server-pw-worker",))
    inv.services["v4-only"] = Service("v4-only", "pw-1", "10.96.12.9", {"http": 80}, {},
                                      ("server-pw-worker",))
    want = wanted_endpoints(inv)
    # server-pw-worker2 has no IPv6: only its IPv4 is waited for.
    assert want["servers"] == {"10.244.1.6", "fd10:244:0:1::6", "10.244.2.7"}
    assert want["v4-only"] == {"10.244.1.6"} and want["servers-headless"] == {"10.244.1.6"}
