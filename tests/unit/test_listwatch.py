"""List then watch (listwatch.py), and the pod wait on it (workloads.await_pods): the
loop's logic only, with a fake `core` (lists with a resourceVersion) and a fake watch
whose streams are scripted. No API server."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import yaml
from kubernetes.client.rest import ApiException

from packetwalk import workloads
from packetwalk.cluster import REQUIRED_ACCESS, Access
from packetwalk.inventory import CORE, HOST, POLICY
from packetwalk.listwatch import watch_until
from packetwalk.waiting import WaitTimeout
from tests.unit.test_stalls import NODES, RUN

OBJECTS = workloads.plan(RUN, NODES)
PODS = {o["metadata"]["name"]: (group, o) for group, o in OBJECTS if o["kind"] == "Pod"}
PENDING = {"spec": {"nodeName": "pw-worker"}, "status": {"phase": "Pending", "conditions": [
    {"type": "PodScheduled", "status": "True"}]}}
READY = {"spec": {"nodeName": "pw-worker"}, "status": {"phase": "Running", "podIP": "10.244.1.5",
                                                       "conditions": [{"type": "Ready",
                                                                       "status": "True"}]}}
PULL_FAILS = {"spec": {"nodeName": "pw-worker"}, "status": {"phase": "Pending",
              "containerStatuses": [{"name": "agnhost", "state": {"waiting": {
                  "reason": "ErrImagePull", "message": "no such image"}}}]}}


def pod(name: str, state: dict, version: str = "1") -> SimpleNamespace:
    meta = PODS[name][1]["metadata"]
    return SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=meta["namespace"],
                                                    resource_version=version), as_dict=state)


def event(name: str, state: dict, version: str = "2") -> dict:
    return {"type": "MODIFIED", "object": pod(name, state, version)}


class Core:
    """Lists the pods in `states` ({name: state}; changed by the test), counting lists."""

    def __init__(self, states: dict[str, dict]):
        self.states = states
        self.lists: list[str] = []

    def list_namespaced_pod(self, namespace, **_):
        self.lists.append(namespace)
        items = [pod(name, state) for name, state in self.states.items()
                 if PODS[name][1]["metadata"]["namespace"] == namespace]
        return SimpleNamespace(items=items, metadata=SimpleNamespace(resource_version="1"))

    def list_namespaced_event(self, namespace, **_):
        return SimpleNamespace(items=[])


class Watches:
    """Makes fake watches. `script[namespace]`: one list per stream of that namespace, in
    order, of its events, or an exception it raises there. A stream past its script is
    quiet: it blocks until stopped or its timeout_seconds pass."""

    def __init__(self, script: dict[str, list] | None = None):
        self.script = {ns: list(streams) for ns, streams in (script or {}).items()}
        self.streams: list[dict] = []  # the kwargs of every stream() call
        self.made = 0

    def __call__(self):
        self.made += 1
        return FakeWatch(self)


class FakeWatch:
    def __init__(self, watches: Watches):
        self.watches = watches
        self.resource_version = None
        self.stopped = threading.Event()

    def stream(self, func, namespace, **kwargs):
        self.watches.streams.append(dict(kwargs, namespace=namespace, at=time.monotonic()))
        self.resource_version = kwargs["resource_version"]
        script = self.watches.script.get(namespace) or []
        if not script:
            self.stopped.wait(kwargs["timeout_seconds"])
            return
        for item in script.pop(0):
            if isinstance(item, Exception):
                raise item
            self.resource_version = item["object"].metadata.resource_version
            yield item

    def stop(self):
        self.stopped.set()


def await_pods(core: Core, watches: Watches, timeout: float = 10.0, monkeypatch=None):
    monkeypatch.setattr(workloads, "CoreV1Api", lambda api: core)
    monkeypatch.setattr(workloads, "_events", lambda *args: "no events")
    api = SimpleNamespace(sanitize_for_serialization=lambda obj: obj.as_dict)
    return workloads.await_pods(api, RUN, OBJECTS, timeout, watch=watches)


def gone() -> ApiException:
    return ApiException(status=410, reason="Gone: too old resource version")


# --- the pod wait -----------------------------------------------------------------------

def test_pods_ready_by_events_end_the_wait_at_once(monkeypatch):
    core = Core(dict.fromkeys(PODS, PENDING))
    by_namespace: dict[str, list] = {}
    for name, (_, obj) in PODS.items():
        by_namespace.setdefault(obj["metadata"]["namespace"], []).append(event(name, READY))
    started = time.monotonic()
    ready, errors, pulls = await_pods(core, Watches({ns: [events] for ns, events in
                                                     by_namespace.items()}),
                                      monkeypatch=monkeypatch)
    assert set(ready) == set(PODS) and errors == {} and pulls == {}
    assert time.monotonic() - started < 0.5  # no trailing poll interval
    assert sorted(core.lists) == sorted(set(core.lists))  # listed once per namespace


def test_a_hopeless_pod_gives_its_groups_error(monkeypatch):
    states = dict.fromkeys(PODS, READY)
    states["host-pw-worker"] = PENDING
    core = Core(states)
    watches = Watches({RUN.host_namespace: [[event("host-pw-worker", PULL_FAILS)]]})
    ready, errors, pulls = await_pods(core, watches, monkeypatch=monkeypatch)
    assert list(errors) == [HOST] and "host-pw-worker" not in ready
    assert errors[HOST].startswith(f"pod {RUN.host_namespace}/host-pw-worker (node pw-worker) "
                                   "never became Ready: phase Pending; agnhost waiting: "
                                   "ErrImagePull (no such image)")
    assert pulls == {"host-pw-worker": "ErrImagePull: no such image"}


def test_a_gone_watch_falls_back_to_a_list(monkeypatch):
    states = dict.fromkeys(PODS, READY)
    states["policy-client-peer"] = PENDING
    core = Core(states)
    # The peer namespace's watch expires (410); its list then shows the pod Ready.
    watches = Watches({RUN.peer_namespace: [[gone()]]})
    threading.Timer(0.1, states.__setitem__, ("policy-client-peer", READY)).start()
    ready, errors, _ = await_pods(core, watches, monkeypatch=monkeypatch)
    assert set(ready) == set(PODS) and errors == {}
    assert core.lists.count(RUN.peer_namespace) == 2


def test_an_error_event_midway_resumes_from_a_list(monkeypatch):
    mine = [name for name, (_, obj) in PODS.items()
            if obj["metadata"]["namespace"] == RUN.namespace]
    states = {name: PENDING if name in mine else READY for name in PODS}
    core = Core(states)
    # Some Ready by events, then the stream breaks; the list after it sees the rest.
    half = [event(name, READY) for name in mine if PODS[name][0] == CORE]
    watches = Watches({RUN.namespace: [[*half, ApiException(status=500, reason="boom")]]})
    threading.Timer(0.1, states.update, (dict.fromkeys(mine, READY),)).start()
    ready, errors, _ = await_pods(core, watches, monkeypatch=monkeypatch)
    assert set(ready) == set(PODS) and errors == {}
    assert core.lists.count(RUN.namespace) == 2


def test_the_deadline_errors_every_group_still_waiting(monkeypatch):
    states = dict.fromkeys(PODS, READY)
    for name, (group, _) in PODS.items():
        if group in (CORE, POLICY):
            states[name] = PENDING
    monkeypatch.setattr(workloads, "STALL_AFTER", 60)
    ready, errors, _ = await_pods(Core(states), Watches(), timeout=1.0, monkeypatch=monkeypatch)
    assert set(errors) == {CORE, POLICY}
    assert errors[CORE].startswith(
        f"pod {RUN.namespace}/server-pw-worker (node pw-worker) never became Ready: timed out "
        "after 1s waiting for the run's pods to become Ready; last state: server-pw-worker: "
        "phase Pending")
    assert set(ready) == {name for name, (group, _) in PODS.items() if group == HOST}


# --- the loop itself --------------------------------------------------------------------

def wait(core: Core, watches: Watches, check, timeout: float, state=None):
    return watch_until("the pods", core.list_namespaced_pod, [RUN.namespace], lambda obj: None,
                       check, timeout=timeout, state=state, watch=watches)


def test_watches_stay_within_the_deadline():
    watches = Watches({RUN.namespace: [[], [], []]})  # ended by the server, resumed
    started = time.monotonic()
    deadline = started + 2.5
    with pytest.raises(WaitTimeout, match=r"^timed out after 2.5s waiting for the pods; "
                                          r"last state: still nothing$"):
        wait(Core({}), watches, lambda: False, 2.5, state=lambda: "still nothing")
    assert 2.5 <= time.monotonic() - started < 3.5
    assert len(watches.streams) >= 2  # one per interval at most: no busy loop
    assert len(watches.streams) <= 4
    for asked in watches.streams:
        remaining = max(1.0, deadline - asked["at"]) + 0.05  # "at": just after it was asked
        assert 1 <= asked["timeout_seconds"] <= remaining
        assert 1 <= asked["_request_timeout"] <= remaining


def test_a_refused_watch_becomes_the_old_poll():
    """403: a RoleBinding without `watch`. Each failure lists again, once a second."""
    core = Core({})
    refused = [[ApiException(status=403, reason="Forbidden")] for _ in range(10)]
    wait_started = time.monotonic()
    with pytest.raises(WaitTimeout):
        wait(core, Watches({RUN.namespace: refused}), lambda: False, 2.5)
    assert time.monotonic() - wait_started < 3.5
    assert 2 <= len(core.lists) <= 4


def test_a_list_that_fails_raises_as_the_poll_did():
    class Failing(Core):
        def list_namespaced_pod(self, namespace, **kwargs):
            if self.lists:
                raise ApiException(status=503, reason="Service Unavailable")
            return super().list_namespaced_pod(namespace, **kwargs)

    with pytest.raises(ApiException, match="Service Unavailable"):
        wait(Failing({}), Watches({RUN.namespace: [[gone()]]}), lambda: False, 5.0)


def test_the_watch_threads_end_with_the_wait():
    before = threading.active_count()
    wait(Core({}), Watches(), lambda: "done", 30.0)
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_the_restricted_tier_may_watch_the_run_pods():
    """Granted, but not checked at preflight: without it the wait lists every second."""
    docs = yaml.safe_load_all((workloads.MANIFESTS / "rbac-restricted.yaml").read_text())
    role = next(d for d in docs if d and d["metadata"]["name"] ==
                "packetwalk-run-namespace-restricted")
    assert any("pods" in rule["resources"] and "watch" in rule["verbs"]
               for rule in role["rules"])
    assert Access("watch", "pods") not in REQUIRED_ACCESS
