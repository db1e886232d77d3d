"""List then watch: wait until a check over the objects seen holds, within a deadline.

A poll every second answers on average half a second after the awaited change, and
lists everything each time. Here each namespace is listed once, then watched from the
list's resourceVersion, one thread per namespace (the run's identity may read pods in
its own namespaces only: no cluster-wide list). Every object an event brings goes to
`take` and `check` runs at once, so the wait ends with the event that satisfies it.
`check` also runs every `interval` seconds without events: it may watch its own clock
(a stall check) and it sees the deadline pass.

Bounded everywhere: each watch asks the server to end it within the remaining deadline
(at least 1 s, at most SPAN s) and reads under a client timeout no longer than that.
A watch that fails (410 Gone: its resourceVersion expired; 403: a RoleBinding without
`watch`; a dropped connection) falls back to a fresh list and a new watch, at most once
per `interval` per namespace: at worst the old poll, never a busier one. A list that
fails raises from the wait, as the poll's did (apiretry has retried it already).

The timeout is wait_for's: WaitTimeout, naming what was awaited and the last state.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from packetwalk.cluster import API_TIMEOUT
from packetwalk.waiting import WaitTimeout, timed_out

T = TypeVar("T")
SPAN = 30  # seconds: the longest single watch; then it resumes from its resourceVersion


def _kubernetes_watch() -> Any:
    from kubernetes.watch import Watch  # only where a cluster is watched
    return Watch()


def watch_until(what: str, lister: Callable[..., Any], namespaces: Sequence[str],
                take: Callable[[Any], None], check: Callable[[], T], timeout: float,
                interval: float = 1.0, state: Callable[[], str] | None = None,
                watch: Callable[[], Any] | None = None, **selector: Any) -> T:
    """List `namespaces` with `lister` (a list_namespaced_* call, with `selector`) and
    watch them; `take` each object listed or watched, then `check`; return the first
    truthy result of `check`, or raise WaitTimeout after `timeout` seconds.

    `watch` makes a kubernetes.watch.Watch (default) or a fake: stream(), stop(),
    resource_version. `take` and `check` run in the caller's thread only.
    """
    watch = watch or _kubernetes_watch
    deadline = time.monotonic() + timeout
    arrived: queue.Queue = queue.Queue()  # lists of objects, or the exception of a list
    stop = threading.Event()
    watches: list[Any] = []

    def listed(namespace: str) -> str:
        found = lister(namespace, _request_timeout=API_TIMEOUT, **selector)
        arrived.put(found.items)
        return found.metadata.resource_version

    def watched(watcher: Any, namespace: str, version: str) -> None:
        """Watch from `version` until the deadline, or the wait ends; raise if a watch
        fails. A watch ended early without an error (a proxy's idle timeout) is resumed,
        but no sooner than `interval` after it began."""
        began = float("-inf")
        while not stop.wait(max(0.0, began + interval - time.monotonic())):
            began = time.monotonic()
            if (remaining := deadline - began) <= 0:
                return
            span = max(1, min(SPAN, int(remaining)))
            for event in watcher.stream(lister, namespace, resource_version=version,
                                        timeout_seconds=span,
                                        _request_timeout=max(1.0, min(remaining, span + 1)),
                                        **selector):
                arrived.put([event["object"]])
            version = watcher.resource_version or version  # the next one resumes there

    def follow(namespace: str, version: str) -> None:
        watcher = watch()
        watches.append(watcher)
        listed_at = time.monotonic()  # the caller listed just before
        while True:
            try:
                return watched(watcher, namespace, version)
            except Exception:  # noqa: BLE001 - whatever broke the watch, a list mends it
                if (stop.wait(max(0.0, listed_at + interval - time.monotonic()))
                        or time.monotonic() >= deadline):
                    return
            listed_at = time.monotonic()
            try:
                version = listed(namespace)
            except Exception as exc:  # noqa: BLE001 - the waiting thread raises it
                arrived.put(exc)
                return

    # The first lists in the caller's thread: the first check sees every namespace.
    versions = [listed(namespace) for namespace in namespaces]
    threads = [threading.Thread(target=follow, args=(namespace, version), daemon=True,
                                name=f"watch {namespace}")
               for namespace, version in zip(namespaces, versions, strict=True)]
    for thread in threads:
        thread.start()
    got: Any = None  # what woke the wait, taken first: events of a pod stay in order
    try:
        while True:
            batch = [] if got is None else [got]
            while not arrived.empty():
                batch.append(arrived.get_nowait())
            for item in batch:
                if isinstance(item, BaseException):
                    raise item
                for obj in item:
                    take(obj)
            if result := check():
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(timed_out(what, timeout, state))
            try:
                got = arrived.get(timeout=min(interval, remaining))
            except queue.Empty:
                got = None
    finally:
        stop.set()
        for watcher in watches:
            watcher.stop()  # ends a stream blocked on its socket; its thread then returns
