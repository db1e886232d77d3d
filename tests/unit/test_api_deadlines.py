"""Every API call of a run has a deadline against a server that accepts and never answers.

A SIGSTOPped kube-apiserver looks like this to a client: the kernel still completes
TCP handshakes into the listening socket's backlog, and nothing ever reads or
writes (no TLS handshake, no HTTP answer). The black hole below is exactly that, a
listening socket nobody serves; it never speaks HTTP. The kubeconfig that points at
it goes through load_configuration, so the calls run with the run's own settings.

The three calls run at once (a module fixture), so the file takes as long as the
slowest, about 2 * API_TIMEOUT; each runs in a daemon thread, so a call that does
hang fails its test instead of hanging the unit suite.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from kubernetes.client import CoreV1Api

from packetwalk import apiretry
from packetwalk.cluster import API_TIMEOUT, Target, load_configuration
from packetwalk.podexec import SOCKET_TIMEOUT, PodExec
from packetwalk.probes import ProbeError, Source

SLACK = 5.0  # seconds for scheduling and the exec's close handshake (3 s at most)
# The deadline each call must meet, from the timeouts the code uses.
EXEC_BOUND = SOCKET_TIMEOUT + SLACK  # the TLS handshake times out
LIST_BOUND = 2 * API_TIMEOUT + SLACK  # one urllib3 retry (load_configuration), then no more
ANSWERING_BOUND = sum(apiretry.QUICK_TIMEOUT) + SLACK


class Outcome:
    """What one call did in its daemon thread: returned or raised, and when."""

    def __init__(self, call):
        self.returned = self.raised = None
        self.seconds: float | None = None
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call) -> None:
        try:
            self.returned = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at whatever it was
            self.raised = exc
        self.seconds = time.monotonic() - self._started

    def wait(self, bound: float) -> Outcome:
        self._thread.join(max(0.0, bound - (time.monotonic() - self._started)))
        assert not self._thread.is_alive(), f"still blocked after {bound:.0f}s"
        what = (f"{type(self.raised).__name__}: {self.raised}" if self.raised
                else f"returned {self.returned!r}")
        print(f"ended after {self.seconds:.1f}s (bound {bound:.0f}s): {what}")
        return self


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # never accept()ed: connections wait in the backlog, unanswered
    port = hole.getsockname()[1]
    path = tmp_path_factory.mktemp("blackhole") / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: hole
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: someone
  user: {{token: not-a-secret}}
contexts:
- name: hole
  context: {{cluster: hole, user: someone}}
current-context: hole
""")
    configuration = load_configuration(Target(str(path), None, "--kubeconfig"))
    source = Source("client", "pw-x", "node", "10.244.0.5")
    started = {
        "exec": Outcome(lambda: PodExec(configuration)(source, ["true"], timeout=3)),
        "list": Outcome(lambda: CoreV1Api(apiretry.client(configuration)).list_namespace(
            _request_timeout=API_TIMEOUT)),
        "answering": Outcome(lambda: apiretry.answering(configuration)),
    }
    yield started
    hole.close()


def test_an_exec_into_a_silent_api_server_is_a_probe_error_within_its_bound(outcomes):
    outcome = outcomes["exec"].wait(EXEC_BOUND)
    assert isinstance(outcome.raised, ProbeError)
    # ... which the plugin confirms as an outage (apiretry.answering) rather than
    # reporting a probe that could not run.
    assert apiretry.unreachable(outcome.raised) is not None


def test_an_api_call_through_the_retrying_client_ends_within_its_bound(outcomes):
    outcome = outcomes["list"].wait(LIST_BOUND)
    assert outcome.raised is not None
    assert apiretry.unreachable(outcome.raised) is not None


def test_the_outage_check_says_why_within_its_bound(outcomes):
    outcome = outcomes["answering"].wait(ANSWERING_BOUND)
    assert outcome.raised is None
    assert outcome.returned  # the reason, one line
