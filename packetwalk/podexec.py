"""The one way packetwalk runs a command in a pod: the exec API over a websocket.

The exit code comes from the exec error channel (channel 3), which carries a
metav1.Status: Success, or Failure with reason NonZeroExitCode and the code in
details.causes. Any other Failure (no such container, executable not found)
or a hung stream means the probe itself broke: ProbeError, never a verdict
about the network.
"""

from __future__ import annotations

import json
import re
import time

import websocket
import yaml
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream, ws_client

from packetwalk.probes import ExecResult, ProbeError, Source

STDOUT, STDERR, ERROR = 1, 2, 3
# Seconds any one socket operation of an exec may take: the TCP connect, the TLS
# and websocket handshakes, each read. Not the command's run time (PodExec's timeout).
SOCKET_TIMEOUT = 10


class _BoundedWebSocket(websocket.WebSocket):
    """kubernetes.stream's WebSocket with a timeout on its socket.

    kubernetes.stream makes a WebSocket() and calls connect() with no timeout, and
    websocket-client applies its default timeout (setdefaulttimeout) only in
    create_connection(): the socket blocks for ever. An API server that accepts
    connections and never answers (stopped, overloaded) then hangs an exec's TLS
    handshake, or the read of a frame it cut short, and with it the test and its
    xdist worker, with no deadline at all (WSClient's own deadline only covers the
    wait for a frame to begin).
    """

    def connect(self, url, **options):
        options.setdefault("timeout", SOCKET_TIMEOUT)
        super().connect(url, **options)


# kubernetes.stream takes no socket options of any kind; its module's WebSocket is
# the only way in. Every exec of the process goes through it, which is the point;
# tests/unit/test_api_deadlines.py fails if a kubernetes release goes around it.
ws_client.WebSocket = _BoundedWebSocket


def exit_code(status_text: str) -> int:
    """Exit code from the error channel's Status document (pure)."""
    if not status_text.strip():
        raise ProbeError("exec stream closed without an exit status")
    status = yaml.safe_load(status_text)
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
    raise ProbeError(f"exec failed: {status.get('message') or status_text.strip()}")


def handshake_message(exc: Exception) -> str:
    """The API server's Status message out of a failed websocket handshake,
    which kubernetes.stream reports as one long string with the headers."""
    text = getattr(exc, "reason", None) or str(exc)
    found = re.search(r'"message":"((?:[^"\\]|\\.)*)"', text)
    if found:
        return json.loads(f'"{found.group(1)}"')
    return text.split(" -+-+- ")[0]


class PodExec:
    """Callable exec function for Prober: (Source, command, timeout) -> ExecResult."""

    def __init__(self, configuration: Configuration):
        self._configuration = configuration

    def __call__(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        # A fresh ApiClient per exec: kubernetes.stream swaps the client's call_api
        # while it opens the websocket, which is not safe to share across threads.
        api = CoreV1Api(ApiClient(self._configuration))
        start = time.monotonic()
        where = f"{src.namespace}/{src.pod}"
        try:
            # A pod of two containers (the policy server) refuses an exec without a name.
            named = {"container": src.container} if src.container else {}
            ws = stream(api.connect_get_namespaced_pod_exec, src.pod, src.namespace, **named,
                        command=command, stderr=True, stdin=False, stdout=True, tty=False,
                        _preload_content=False, _request_timeout=timeout)
        except (ApiException, OSError, websocket.WebSocketException) as exc:
            raise ProbeError(f"exec into {where} failed: {handshake_message(exc)}") from exc
        try:
            ws.run_forever(timeout=timeout)
            if ws.is_open():
                raise ProbeError(f"exec into {where} still running after {timeout:.0f}s: "
                                 f"{' '.join(command)}")
            stdout = ws.read_channel(STDOUT)
            stderr = ws.read_channel(STDERR)
            status = ws.read_channel(ERROR)
        except (OSError, websocket.WebSocketException) as exc:
            raise ProbeError(f"exec stream from {where} broke: {exc}") from exc
        finally:
            ws.close()
        return ExecResult(exit_code(status), stdout, stderr, time.monotonic() - start)
