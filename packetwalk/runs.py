"""A run's footprint in the cluster: its namespaces, their liveness marks,
their deletion, and the sweep of namespaces left by runs that died.

Every object a run creates lives in its two namespaces, pw-<run> and
pw-<run>-peer, so deleting those two deletes everything.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

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


def is_stale(namespace: dict, now: float, host: str, alive=pid_alive) -> bool:
    """Whether a packetwalk namespace belongs to a run that is not running anymore.

    Never stale: a run kept on purpose (--keep), or one already being deleted.
    Stale: a run from this host whose controller pid is gone, or any run whose
    heartbeat stopped STALE_AFTER seconds ago (a concurrent live run keeps
    beating, so it is never swept). Pid reuse errs on the safe side: a reused
    pid looks alive and only the heartbeat age sweeps it.
    """
    metadata = namespace.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if annotations.get(ANNOTATION_KEEP) == "true" or metadata.get("deletionTimestamp"):
        return False
    try:
        heartbeat = float(annotations.get(ANNOTATION_HEARTBEAT, "0"))
        pid = int(annotations.get(ANNOTATION_PID, "0"))
    except ValueError:
        heartbeat, pid = 0.0, 0
    if now - heartbeat > STALE_AFTER:
        return True
    return annotations.get(ANNOTATION_HOST) == host and pid > 0 and not alive(pid)


def sweep_stale(api: ApiClient, current: Run) -> list[str]:
    """Delete namespaces of dead runs; returns their names. Does not wait."""
    core = CoreV1Api(api)
    listed = core.list_namespace(label_selector=f"{MANAGED_BY}=packetwalk",
                                 _request_timeout=API_TIMEOUT)
    now, host = time.time(), socket.gethostname()
    swept = []
    for ns in listed.items:
        if (ns.metadata.labels or {}).get(RUN_LABEL) == current.id:
            continue
        if is_stale(api.sanitize_for_serialization(ns), now, host):
            _delete_namespace(core, ns.metadata.name)
            swept.append(ns.metadata.name)
    return swept


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
                             _request_timeout=API_TIMEOUT)


class Heartbeat:
    """Refreshes the run's heartbeat annotation while the controller lives."""

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
            for name in (self._run.namespace, self._run.peer_namespace):
                # A missed beat is simply retried next time.
                with contextlib.suppress(Exception):
                    core.patch_namespace(name, patch, _request_timeout=API_TIMEOUT)
