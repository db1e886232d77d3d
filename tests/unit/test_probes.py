"""Classifying what a probe saw, without a cluster."""

import pytest

from packetwalk.probes import (
    DNS,
    OK,
    OTHER,
    PARTIAL_BACKENDS,
    PROBE_ERROR,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    WRONG_BACKEND,
    ExecResult,
    ProbeError,
    Prober,
    Source,
    Target,
    classify_asks,
    classify_curl,
    classify_dig,
    host_of,
    judge_backends,
    parse_resolv_conf,
    payload_of,
)

REFUSED_V = ("*   Trying 10.244.1.5:8080...\n"
             "* connect to 10.244.1.5 port 8080 failed: Connection refused\n"
             "* Failed to connect to 10.244.1.5 port 8080 after 0 ms: Couldn't connect to server\n"
             "curl: (7) Failed to connect to 10.244.1.5 port 8080 after 0 ms: "
             "Couldn't connect to server\n")


@pytest.mark.parametrize("rc, stderr, cls", [
    (0, "", OK),
    (7, REFUSED_V, REFUSED),
    (7, REFUSED_V.replace("Connection refused", "No route to host"), UNREACHABLE),
    (28, "curl: (28) Connection timed out after 3001 milliseconds", TIMEOUT),
    (6, "curl: (6) Could not resolve host: servers", DNS),
    (127, "sh: curl: not found", PROBE_ERROR),
    (52, "curl: (52) Empty reply from server", OTHER),
])
def test_curl(rc, stderr, cls):
    assert classify_curl(rc, stderr) == cls


def test_asks_answers_and_errors():
    assert classify_asks(0, "0 1200 server-a\n0 900 server-b\n", "udp") == (
        OK, ["server-a", "server-b"], "")
    cls, answers, detail = classify_asks(0, "0 1200 server-a\n124 3001000\n", "udp", wait=3)
    assert cls == TIMEOUT and answers == ["server-a"]
    assert detail == "1 of 2 tries failed, first: no answer within 3 s; answered by ['server-a']"
    assert classify_asks(0, "143 3000100\n", "udp")[0] == TIMEOUT  # busybox timeout: its signal
    refused = "1 800 head: error reading 'standard input': Connection refused\n"
    assert classify_asks(0, refused, "udp")[0] == REFUSED
    unknown = ("1 700 bash: line 1: servers: Name or service not known "
               "bash: line 1: /dev/udp/servers/8081: Invalid argument\n")
    assert classify_asks(0, unknown, "udp")[0] == DNS
    assert classify_asks(0, "0 500\n", "udp")[0] == OTHER  # an empty answer is not a drop
    assert classify_asks(0, "28 5000000 curl: (28) Operation timed out\n", "tcp")[0] == TIMEOUT
    assert classify_asks(127, "bash: not found", "udp")[0] == PROBE_ERROR
    assert classify_asks(0, "", "udp")[0] == PROBE_ERROR  # printed nothing: the ask broke


DIG_OK = """;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1
servers.pw-1.svc.cluster.local. 30 IN A 10.96.4.2
"""

def test_dig():
    assert classify_dig(0, DIG_OK) == (OK, ["10.96.4.2"], "")
    assert classify_dig(0, DIG_OK.replace("NOERROR", "NXDOMAIN").splitlines()[1])[0] == DNS
    assert classify_dig(9, ";; communications error to 10.96.0.10#53: timed out\n"
                           ";; no servers could be reached")[0] == TIMEOUT
    assert classify_dig(9, ";; Connection to 10.96.0.10#53(10.96.0.10) for x failed: "
                           "connection refused.\n;; no servers could be reached")[0] == REFUSED
    assert classify_dig(127, "")[0] == PROBE_ERROR


def test_backends_all_partial_wrong():
    assert judge_backends(["a", "b", "a"], {"a", "b"})[0] == OK
    assert judge_backends(["a"] * 16, {"a", "b"})[0] == PARTIAL_BACKENDS
    assert judge_backends(["a", "c"], {"a", "b"})[0] == WRONG_BACKEND


def test_small_parsers():
    assert parse_resolv_conf("search pw-1.svc.cluster.local svc.cluster.local\n"
                             "nameserver 10.96.0.10\noptions ndots:5\n") == (
        ["10.96.0.10"], ["pw-1.svc.cluster.local", "svc.cluster.local"])
    assert host_of("10.244.1.5:41234") == "10.244.1.5"
    assert host_of("[fd00::5]:80") == "fd00::5"
    # socat's forms on a dual-stack listener: full IPv6, and an IPv4 client mapped
    assert host_of("[fd10:0000:0000:4401:0000:0000:0000:0003]:5") == "fd10:0:0:4401::3"
    assert host_of("[0000:0000:0000:0000:0000:ffff:0af4:0105]:41234") == "10.244.1.5"
    payload = payload_of(1000)
    assert len(payload) == 1000 and payload == payload.lower() and payload[:36] != payload[1:37]


SRC = Source("client-a", "pw-1", "node-a", "10.244.1.5")


def test_prober_names_the_probe_and_keeps_evidence():
    def fake_exec(src, command, timeout):
        return ExecResult(7, "", REFUSED_V, 0.01)

    seen = Prober(fake_exec).http(SRC, Target("10.96.0.7", 8080, "tcp"), "hostname")
    assert seen.probe == "client-a (10.244.1.5) -> 10.96.0.7:8080/tcp"
    assert seen.cls == REFUSED and "Connection refused" in seen.output
    assert seen.command.startswith("curl ") and "http://10.96.0.7:8080/hostname" in seen.command


def test_a_probe_that_cannot_run_raises_instead_of_observing():
    def fake_exec(src, command, timeout):
        return ExecResult(127, "", "sh: curl: not found", 0.01)

    with pytest.raises(ProbeError, match="could not run"):
        Prober(fake_exec).http(SRC, Target("10.96.0.7", 8080, "tcp"), "hostname")


def test_udp_asks_from_the_source_itself_with_a_pasteable_command():
    commands = []

    def fake_exec(src, command, timeout):
        commands.append(command)
        return ExecResult(0, "0 9000 server-b\n", "", 0.01)

    seen = Prober(fake_exec).request(SRC, Target("10.244.2.9", 8081, "udp"), "hostname")
    assert seen.cls == OK and seen.response == "server-b"
    assert commands[0][:2] == ["bash", "-c"] and "/dev/udp/10.244.2.9/8081" in commands[0][2]
    assert seen.command.startswith("bash -c ") and "printf %s hostname" in seen.command


def test_asking_by_name_resolves_once_and_every_attempt_dials_the_address():
    commands = []

    def fake_exec(src, command, timeout):
        commands.append(command)
        if command[0] == "dig":
            return ExecResult(0, ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n"
                                 "server-b.pw-1.svc.cluster.local. 30 IN A 10.96.3.4\n", "", 0.01)
        return ExecResult(0, "0 9000 server-b\n0 9000 server-b\n0 9000 server-b\n", "", 0.01)

    seen = Prober(fake_exec).ask(SRC, Target("server-b", 8081, "udp"), "hostname", 3, host="server-b")
    assert [c[0] for c in commands] == ["dig", "bash"]  # one lookup, one exec for the three
    assert "/dev/udp/10.96.3.4/8081" in commands[1][-1] and "server-b/" not in commands[1][-1]
    assert len(seen) == 3 and all(o.cls == "OK" and "server-b as resolved" in o.via for o in seen)
