"""ask_script's concurrent form, run by a real bash on this machine through a kept
shell (the pod's, played by tests.unit.test_podexec.LocalBash), against local
listeners: the tries run at once, each prints its own line with its own time."""

import http.server
import socket
import threading
import time

import pytest

from packetwalk.attempts import BROKEN, FLAKY, PASSED, judge
from packetwalk.hops import EXPECTED_CLASSES
from packetwalk.podexec import Shell
from packetwalk.probes import OK, REFUSED, TIMEOUT, Prober, Source, Target
from tests.unit.test_podexec import LocalBash

SRC = Source("client", "pw-1", "pw-worker", "127.0.0.1")
OPEN = EXPECTED_CLASSES["open"]


@pytest.fixture
def prober():
    shell = Shell(LocalBash(frame=64), "local/bash")
    yield Prober(lambda src, command, timeout: shell.run(command, timeout))
    shell.close()


class _Hostname(http.server.BaseHTTPRequestHandler):
    delay = 0.2  # so three tries one after another would take 0.6 s

    def body(self) -> bytes:
        return b"server-a\n"

    def do_GET(self):
        time.sleep(self.delay)
        body = self.body()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostname)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def udp_answering_once():
    """A UDP socket that answers the first datagram it gets and no other."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)

    def answer_once():
        try:
            _, peer = sock.recvfrom(2048)
            sock.sendto(b"server-a", peer)
        except OSError:
            pass

    threading.Thread(target=answer_once, daemon=True).start()
    yield sock.getsockname()[1]
    sock.close()


def _closed_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_attempts_run_at_once_each_with_its_answer_and_time(prober, http_port):
    started = time.monotonic()
    seen = prober.attempts(SRC, Target("127.0.0.1", http_port, "tcp"), "hostname", 3)
    took = time.monotonic() - started
    assert [s.cls for s in seen] == [OK] * 3 and [s.response for s in seen] == ["server-a"] * 3
    assert all(0.2 <= s.seconds < 0.6 for s in seen), [s.seconds for s in seen]
    assert took < 0.55, f"three 0.2 s answers took {took:.2f}s: the tries did not overlap"
    assert judge(seen, OPEN).state == PASSED
    assert "curl -sS -v" in seen[0].command and "&" in seen[0].command


def test_a_closed_port_is_refused_from_curls_errno(prober):
    seen = prober.attempts(SRC, Target("127.0.0.1", _closed_port(), "tcp"), "hostname", 2)
    assert [s.cls for s in seen] == [REFUSED] * 2
    assert "Connection refused" in seen[0].detail
    result = judge(seen, OPEN)
    assert (result.state, result.words()) == (BROKEN, "broken: 2 of 2 attempts failed (REFUSED)")


def test_udp_tries_that_time_out_cost_one_wait_and_one_answer_makes_it_flaky(
        prober, udp_answering_once):
    started = time.monotonic()
    seen = prober.attempts(SRC, Target("127.0.0.1", udp_answering_once, "udp"), "hostname", 3,
                           wait=1)
    took = time.monotonic() - started
    assert sorted(s.cls for s in seen) == [OK, TIMEOUT, TIMEOUT]
    assert took < 1.9, f"three 1 s waits took {took:.2f}s: they ran one after another"
    timed_out = [s for s in seen if s.cls == TIMEOUT]
    assert all(0.9 <= s.seconds < 1.9 for s in timed_out), [s.seconds for s in timed_out]
    assert judge(seen, OPEN).words() == "flaky: 2 of 3 attempts failed (TIMEOUT)"
    assert judge(seen, OPEN).state == FLAKY


def test_more_tries_than_a_wave_all_print_their_line(prober):
    seen = prober.attempts(SRC, Target("127.0.0.1", _closed_port(socket.SOCK_DGRAM), "udp"),
                           "hostname", 10, wait=1)
    assert [s.cls for s in seen] == [REFUSED] * 10
