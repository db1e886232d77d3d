"""Which leftover namespaces the sweep may delete, and run naming."""

from packetwalk.runs import (
    ANNOTATION_HEARTBEAT,
    ANNOTATION_HOST,
    ANNOTATION_KEEP,
    ANNOTATION_PID,
    STALE_AFTER,
    Run,
    is_stale,
)

NOW = 1_000_000.0


def ns(host="here", pid=42, age=10.0, keep=False, deleting=False):
    annotations = {ANNOTATION_HOST: host, ANNOTATION_PID: str(pid),
                   ANNOTATION_HEARTBEAT: str(int(NOW - age))}
    if keep:
        annotations[ANNOTATION_KEEP] = "true"
    metadata = {"name": "pw-x", "annotations": annotations}
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": metadata}


def alive(pid):
    return pid == 42


def test_live_run_on_this_host_is_kept():
    assert not is_stale(ns(), NOW, "here", alive)


def test_dead_pid_on_this_host_is_swept_at_once():
    assert is_stale(ns(pid=7), NOW, "here", alive)


def test_other_host_only_by_heartbeat_age():
    assert not is_stale(ns(host="ci-2", pid=7), NOW, "here", alive)
    assert is_stale(ns(host="ci-2", pid=7, age=STALE_AFTER + 1), NOW, "here", alive)


def test_kept_or_deleting_namespaces_are_left_alone():
    assert not is_stale(ns(pid=7, age=10 * STALE_AFTER, keep=True), NOW, "here", alive)
    assert not is_stale(ns(pid=7, deleting=True), NOW, "here", alive)


def test_unannotated_namespace_counts_as_ancient():
    assert is_stale({"metadata": {"name": "pw-old"}}, NOW, "here", alive)


def test_run_namespaces():
    run = Run("abc123")
    assert (run.namespace, run.peer_namespace) == ("pw-abc123", "pw-abc123-peer")
    assert run.selector == "app.kubernetes.io/managed-by=packetwalk,packetwalk.io/run=abc123"
    assert len(Run.new().id) == 6
