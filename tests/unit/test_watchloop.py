"""The watch's probe loops, run by a real bash on this machine against local listeners
that go away for a known second and come back: each loop sends on schedule, and the
outage it reports is the one that happened, within one interval."""

import http.server
import socket
import subprocess
import threading
import time

import pytest

from packetwalk.outage import INTERVAL, Sample, watch_of
from packetwalk.probes import OK, REFUSED, Target
from packetwalk.watchloop import (
    WAIT,
    clock_script,
    collect_script,
    lease_script,
    loop_script,
    parse_collected,
    start_script,
)
from tests.unit.test_probes_concurrent import _Hostname as HostnameAfterDelay

OUTAGE = 1.0  # seconds each listener is gone


class _Hostname(HostnameAfterDelay):
    delay = 0


class Http:
    """An HTTP server on a fixed port that can be stopped and started again."""

    def __init__(self):
        self.port = _free_port(socket.SOCK_STREAM)
        self.server = None

    def start(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _Hostname)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Udp:
    """A UDP socket answering 'server-a' to every datagram, on a fixed port; closed, the
    port answers ICMP port unreachable (REFUSED), as a dead backend's would."""

    def __init__(self):
        self.port = _free_port(socket.SOCK_DGRAM)
        self.sock = None

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.01)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self):
        while not self.stopping.is_set():
            try:
                _, peer = self.sock.recvfrom(2048)
                self.sock.sendto(b"server-a", peer)
            except TimeoutError:
                continue

    def stop(self):
        # not a close under a blocked recvfrom: the port would stay bound until it returns
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def _free_port(kind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bash(script: str) -> str:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=20,
                          check=True).stdout


def test_a_gone_listener_is_one_outage_of_its_length_on_each_protocol(tmp_path):
    http_server, udp_server = Http(), Udp()
    http_server.start()
    udp_server.start()
    directory = str(tmp_path / "watch")
    loops = {"c0": loop_script("c0", Target("127.0.0.1", http_server.port, "tcp"), "hostname",
                               INTERVAL, directory),
             "c1": loop_script("c1", Target("127.0.0.1", udp_server.port, "udp"), "hostname",
                               INTERVAL, directory)}
    before = time.time()
    assert bash(start_script(loops, int(before) + 30, directory)).strip() == "started 2"
    assert time.time() - before < 2  # the loops are detached: the start returns at once
    stopping, gone, back = {}, {}, {}
    try:
        time.sleep(1.5)
        for name, server in (("c0", http_server), ("c1", udp_server)):
            stopping[name] = time.time()  # the HTTP server's shutdown takes up to 0.5 s:
            server.stop()  # it is gone somewhere between the two
            gone[name] = time.time()
        time.sleep(OUTAGE)
        for name, server in (("c0", http_server), ("c1", udp_server)):
            back[name] = time.time()  # and open again just after
            server.start()
        time.sleep(1.5)
    finally:
        bash(lease_script(0, directory))
    time.sleep(WAIT + 0.5)  # the last probes write their lines, the loops end
    assert bash(f"pgrep -f '{directory}/[c]0.log' || true") == ""  # the loops ended
    found = parse_collected(bash(collect_script(directory)), {"c0": "tcp", "c1": "udp"})
    for name in ("c0", "c1"):
        samples = [Sample(sent, t.cls == OK and t.answer == "server-a", t.cls)
                   for sent, t in found[name]]
        watch = watch_of(samples, gone[name])
        # loose: the machine may be busy (the lab up beside it); the lab's own rates are
        # measured by the watch itself and printed with every run
        assert watch.rate == pytest.approx(1 / INTERVAL, rel=0.3), (name, watch.summary())
        assert watch.max_gap < 5 * INTERVAL, (name, watch.summary())
        # the listener's outage is the longest window; a busy machine may add a lost
        # probe elsewhere (a try forked late past its wait), never a second outage
        window = max(watch.windows, key=lambda w: w.duration)
        assert all(w.lost == 1 for w in watch.windows if w is not window), watch.windows
        # each edge is late after the truth by less than the gap between two sends
        # (one interval on an idle machine; the largest gap bounds it on a busy one)
        slack, step = gone[name] - stopping[name] + 0.02, max(INTERVAL, watch.max_gap)
        assert -slack <= window.start < step + 0.02, (name, window)
        assert window.duration == pytest.approx(back[name] - gone[name],
                                                abs=step + slack), (name, window)
        # (a connection the stopping server cut is a RESET before the refusals)
        assert REFUSED in window.classes and not watch.broken_at_end
    http_server.stop()
    udp_server.stop()


def test_a_loop_without_a_lease_file_sends_nothing_and_ends(tmp_path):
    directory = str(tmp_path / "watch")
    target = Target("127.0.0.1", _free_port(socket.SOCK_DGRAM), "udp")
    started = time.monotonic()
    bash(f"mkdir -p {directory}; {loop_script('c0', target, 'hostname', INTERVAL, directory)}")
    assert time.monotonic() - started < 2
    assert parse_collected(bash(collect_script(directory)), {"c0": "udp"}) == {"c0": []}


def test_an_expired_lease_ends_a_loop_by_itself(tmp_path):
    directory = str(tmp_path / "watch")
    target = Target("127.0.0.1", _free_port(socket.SOCK_DGRAM), "udp")
    started = time.monotonic()
    # +2: the lease is whole seconds; +1 could leave the loop a few ms before it ends
    bash(f"{lease_script(int(time.time()) + 2, directory)}; "
         f"{loop_script('c0', target, 'hostname', INTERVAL, directory)}")
    assert time.monotonic() - started < 3 + WAIT + 1
    lines = parse_collected(bash(collect_script(directory)), {"c0": "udp"})["c0"]
    assert lines and all(t.cls == REFUSED for _, t in lines)


def test_collected_lines_are_typed_and_stray_lines_left_out():
    text = ("c0.log:1700000000123456 0 2100 server-a\n"
            "c0.log:1700000000323456 7 1000 * connect to 10.0.0.1 port 80 failed: "
            "Connection refused\n"
            "c0.log:17000000005\n"  # cut off mid-line when the lease ended
            "c9.log:1700000000123456 0 2100 server-a\n")
    found = parse_collected(text, {"c0": "tcp"})
    assert [(sent, t.cls, t.answer) for sent, t in found["c0"]] == [
        (1700000000.123456, OK, "server-a"), (1700000000.323456, REFUSED, "")]


def test_the_clock_script_prints_the_wall_clock():
    before = time.time()
    seen = float(bash(clock_script()))
    assert before - 0.01 <= seen <= time.time() + 0.01
