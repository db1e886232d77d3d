"""A run's footprint in the cluster: its namespaces, their liveness marks,
their deletion, and the sweep of namespaces left by runs that died.

Every object a run creates lives in its namespaces, pw-<run> and pw-<run>-peer
(Pod Security restricted) and, only when hostNetwork or capture pods are
planned, pw-<run>-host (privileged). All carry the run's labels, so deleting
the namespaces with those labels deletes everything.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT
from packetwalk.waiting import wait_for

MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "packetwalk.io/run"
ANNOTATION_HOST = "packetwalk.io/host"
ANNOTATION_PID = "packetwalk.io/pid"
ANNOTATION_HEARTBEAT = "packetwalk.io/heartbeat"
ANNOTATION_KEEP = "packetwalk.io/keep"
HEARTBEAT_EVERY = 30  # seconds between liveness marks of a running controller
# A run whose heartbeat is older than this is dead, wherever it ran. Ten
# heartbeats missed: far beyond any API hiccup, and a crashed CI job's leftovers
# are gone by the next job. A run on this host is dead as soon as its pid is.
STALE_AFTER = 600
# The client sends a dict body as a JSON Patch unless told otherwise, which the
# API server refuses for an object: every patch here says what it is.
MERGE_PATCH = "application/merge-patch+json"
DELETE_WAIT = 60  # seconds --wait-cleanup waits for our namespaces to disappear at the end


@dataclass(frozen=True)
class Run:
    id: str

    @property
    def namespace(self) -> str:
        return f"pw-{self.id}"

    @property
    def peer_namespace(self) -> str:
        """A second namespace, for NetworkPolicy namespaceSelector tests."""
        return f"pw-{self.id}-peer"

    @property
    def host_namespace(self) -> str:
        """hostNetwork and --capture-packets pods: the only privileged namespace."""
        return f"pw-{self.id}-host"

    @property
    def selector(self) -> str:
        return f"{MANAGED_BY}=packetwalk,{RUN_LABEL}={self.id}"

    @staticmethod
    def new() -> Run:
        return Run(secrets.token_hex(3))


def liveness_annotations(now: float | None = None) -> dict[str, str]:
    return {ANNOTATION_HOST: socket.gethostname(), ANNOTATION_PID: str(os.getpid()),
            ANNOTATION_HEARTBEAT: str(int(now if now is not None else time.time()))}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _server_time(stamp: str | None) -> float | None:
    """An API timestamp (RFC 3339, as in managedFields) as epoch seconds, or None."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def last_written(namespace: dict) -> float | None:
    """When anyone last wrote to the namespace, by the API server's clock.

    The server stamps each managedFields entry when its manager changes a
    field; the heartbeat changes its annotation every beat, so this moves
    with it. Creation time is the floor.
    """
    metadata = namespace.get("metadata") or {}
    stamps = [_server_time(entry.get("time")) for entry in metadata.get("managedFields") or []]
    stamps.append(_server_time(metadata.get("creationTimestamp")))
    known = [s for s in stamps if s is not None]
    return max(known) if known else None


def is_stale(namespace: dict, server_now: float | None, host: str, alive=pid_alive) -> bool:
    """Whether a namespace belongs to a packetwalk run that is not running anymore.

    Never touched: a namespace without the run label and the run's heartbeat
    annotation (packetwalk did not create it, or not as a run), one kept on
    purpose (--keep), or one already being deleted.
    Stale: a run from this host whose controller pid is gone, or any run whose
    namespace nobody wrote to for STALE_AFTER seconds, both times read from the
    API server's clock (`server_now` is its Date header; None: age unknown, so
    only the pid rule applies). Local clocks of other machines never count.
    Pid reuse errs on the safe side: a reused pid looks alive.
    """
    metadata = namespace.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if ANNOTATION_HEARTBEAT not in annotations or not (metadata.get("labels") or {}).get(RUN_LABEL):
        return False
    if annotations.get(ANNOTATION_KEEP) == "true" or metadata.get("deletionTimestamp"):
        return False
    written = last_written(namespace)
    if server_now is not None and written is not None and server_now - written > STALE_AFTER:
        return True
    try:
        pid = int(annotations.get(ANNOTATION_PID, "0"))
    except ValueError:
        return False
    return annotations.get(ANNOTATION_HOST) == host and pid > 0 and not alive(pid)


def sweep_stale(api: ApiClient, current: Run) -> list[str]:
    """Delete namespaces of dead runs; returns their names. Does not wait."""
    core = CoreV1Api(api)
    listed, _, headers = core.list_namespace_with_http_info(
        label_selector=f"{MANAGED_BY}=packetwalk,{RUN_LABEL}", _request_timeout=API_TIMEOUT)
    server_now = _http_date(headers.get("Date") if headers else None)
    host = socket.gethostname()
    swept = []
    for ns in listed.items:
        if (ns.metadata.labels or {}).get(RUN_LABEL) == current.id:
            continue
        if is_stale(api.sanitize_for_serialization(ns), server_now, host):
            try:
                _delete_namespace(core, ns.metadata.name)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                continue  # another identity's run (RBAC, rbac-restricted.yaml): not ours to sweep
            swept.append(ns.metadata.name)
    return swept


def _http_date(value: str | None) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _delete_namespace(core: CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name, _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise


def run_namespaces(api: ApiClient, run: Run) -> list[str]:
    listed = CoreV1Api(api).list_namespace(label_selector=run.selector,
                                           _request_timeout=API_TIMEOUT)
    return [ns.metadata.name for ns in listed.items]


def delete_run(api: ApiClient, run: Run, wait: float | None = None) -> None:
    """Delete the run's namespaces (by label, so nothing is missed). The cluster removes
    what is in them on its own; with `wait`, wait until they are gone, and a namespace
    still terminating after `wait` seconds raises TimeoutError."""
    core = CoreV1Api(api)
    for name in run_namespaces(api, run):
        _delete_namespace(core, name)
    if wait is None:
        return
    wait_for(f"namespaces of run {run.id} to be deleted",
             lambda: not run_namespaces(api, run), timeout=wait, interval=1.0,
             state=lambda: ", ".join(run_namespaces(api, run)))


def mark_kept(api: ApiClient, run: Run) -> None:
    """--keep: flag the namespaces so later sweeps leave them alone."""
    core = CoreV1Api(api)
    for name in run_namespaces(api, run):
        core.patch_namespace(name, {"metadata": {"annotations": {ANNOTATION_KEEP: "true"}}},
                             _content_type=MERGE_PATCH,
                             _request_timeout=API_TIMEOUT)


class Heartbeat:
    """Refreshes the run's heartbeat annotation while the controller lives, on every
    namespace carrying the run's labels (two or three)."""

    def __init__(self, api: ApiClient, run: Run):
        self._api, self._run = api, run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="packetwalk-heartbeat",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        core = CoreV1Api(self._api)
        while not self._stop.wait(HEARTBEAT_EVERY):
            patch = {"metadata": {"annotations": liveness_annotations()}}
            # A missed beat is simply retried next time.
            with contextlib.suppress(Exception):
                for name in run_namespaces(self._api, self._run):
                    with contextlib.suppress(Exception):
                        core.patch_namespace(name, patch, _content_type=MERGE_PATCH,
                                             _request_timeout=API_TIMEOUT)
