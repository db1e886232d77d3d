"""The one way packetwalk runs a command in a pod: the exec API over a websocket.

Probes go through a shell kept open in the pod (Shell): one exec of `bash`, its
stdin fed one command at a time, each command's end marked on stdout and stderr
with its exit code. Opening an exec (the API server, the kubelet, the runtime's
exec) costs far more than a probe; a run's probes pay it once per pod and
worker instead of once per probe. The shell reads only from its exec stream:
it ends with the stream, and nothing of it listens on the network.

A one-shot exec (`once`) is kept for the long commands (a capture) and as the
fallback. Its exit code comes from the exec error channel (channel 3), which
carries a metav1.Status: Success, or Failure with reason NonZeroExitCode and the
code in details.causes. Any other Failure (no such container, executable not
found) or a hung stream means the probe itself broke: ProbeError, never a
verdict about the network.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import threading
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


# Commands allowed this long go through a kept shell; longer ones (captures) get
# an exec of their own, so a shell is never tied up for minutes.
SHELL_MAX_TIMEOUT = 60.0
_MARK = "@@pw-end"


class ShellBroken(Exception):
    """The kept shell's stream failed before the command ran: open another."""


class Shell:
    """A bash kept open in one container over one exec stream. Not thread-safe:
    PodExec lends each shell to one caller at a time."""

    def __init__(self, ws, where: str):
        self._ws, self.where = ws, where

    def run(self, command: list[str], timeout: float) -> ExecResult:
        token = secrets.token_hex(6)
        end = f"\n{_MARK}-{token}"
        # stdin from /dev/null: a command reading stdin would eat the next ones.
        line = (f"{shlex.join(command)} </dev/null; printf '\\n{_MARK}-{token} %s\\n' $?; "
                f"printf '\\n{_MARK}-{token}\\n' >&2\n")
        start = time.monotonic()
        try:
            self._ws.write_stdin(line)
        except (OSError, websocket.WebSocketException) as exc:
            raise ShellBroken(str(exc)) from exc
        out, err = "", ""
        while not (end in out and out.endswith("\n") and f"{end}\n" in err):
            left = start + timeout - time.monotonic()
            if left <= 0:
                raise ProbeError(f"exec into {self.where} still running after {timeout:.0f}s: "
                                 f"{shlex.join(command)}")
            try:
                if not self._ws.is_open():
                    raise ShellBroken("the stream closed")
                self._ws.update(timeout=min(left, 1.0))
                out += self._ws.read_channel(STDOUT)
                err += self._ws.read_channel(STDERR)
            except (OSError, websocket.WebSocketException) as exc:
                if not out and not err:
                    raise ShellBroken(str(exc)) from exc
                raise ProbeError(f"exec stream from {self.where} broke: {exc}") from exc
        stdout, _, status = out.partition(end)
        code = status.split()[0] if status.split() else ""
        if not code.isdigit():
            raise ProbeError(f"the shell in {self.where} printed no exit status: {status!r}")
        return ExecResult(int(code), stdout, err.partition(end)[0], time.monotonic() - start)

    def close(self) -> None:
        try:
            self._ws.close()
        except (OSError, websocket.WebSocketException):
            pass


class PodExec:
    """Callable exec function for Prober: (Source, command, timeout) -> ExecResult.

    Keeps idle shells per (namespace, pod, container); a caller takes one (or opens
    one) for its command and gives it back, so parallel probes from one pod (the
    NetworkPolicy cells, the narrowing) each get their own."""

    def __init__(self, configuration: Configuration, shells: bool = True):
        self._configuration = configuration
        self._shells = shells
        self._idle: dict[tuple[str, str, str], list[Shell]] = {}
        self._lock = threading.Lock()

    def __call__(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        if not self._shells or timeout > SHELL_MAX_TIMEOUT:
            return self.once(src, command, timeout)
        key = (src.namespace, src.pod, src.container)
        for _ in range(2):  # a kept shell may have gone stale (API restart, pod gone)
            shell = self._take(key) or self._open(src)
            try:
                result = shell.run(command, timeout)
            except ShellBroken:
                shell.close()
                continue
            except ProbeError:
                shell.close()  # mid-command: its state is unknown
                raise
            with self._lock:
                self._idle.setdefault(key, []).append(shell)
            return result
        return self.once(src, command, timeout)

    def _take(self, key: tuple[str, str, str]) -> Shell | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def close(self) -> None:
        """Close every kept shell (their bash ends with the stream)."""
        with self._lock:
            shells = [s for idle in self._idle.values() for s in idle]
            self._idle.clear()
        for shell in shells:
            shell.close()

    def _connect(self, src: Source, command: list[str], stdin: bool, timeout: float):
        # A fresh ApiClient per exec: kubernetes.stream swaps the client's call_api
        # while it opens the websocket, which is not safe to share across threads.
        api = CoreV1Api(ApiClient(self._configuration))
        where = f"{src.namespace}/{src.pod}"
        try:
            # A pod of two containers refuses an exec without a name.
            named = {"container": src.container} if src.container else {}
            return stream(api.connect_get_namespaced_pod_exec, src.pod, src.namespace, **named,
                          command=command, stderr=True, stdin=stdin, stdout=True, tty=False,
                          _preload_content=False, _request_timeout=timeout)
        except (ApiException, OSError, websocket.WebSocketException) as exc:
            raise ProbeError(f"exec into {where} failed: {handshake_message(exc)}") from exc

    def _open(self, src: Source) -> Shell:
        return Shell(self._connect(src, ["bash"], True, SOCKET_TIMEOUT),
                     f"{src.namespace}/{src.pod}")

    def once(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        """One exec of its own for `command`."""
        start = time.monotonic()
        where = f"{src.namespace}/{src.pod}"
        ws = self._connect(src, command, False, timeout)
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
