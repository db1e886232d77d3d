"""Which leftover namespaces the sweep may delete, and run naming."""

from datetime import UTC, datetime

from packetwalk.runs import (
    ANNOTATION_HEARTBEAT,
    ANNOTATION_HOST,
    ANNOTATION_KEEP,
    ANNOTATION_PID,
    RUN_LABEL,
    STALE_AFTER,
    Run,
    is_stale,
    last_written,
)

NOW = 1_000_000.0  # the API server's clock


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ns(host="here", pid=42, age=10.0, keep=False, deleting=False, local_heartbeat=None):
    """A run namespace last written `age` seconds ago by the server's clock. The
    heartbeat annotation holds the writer's local clock, which may be anything."""
    annotations = {ANNOTATION_HOST: host, ANNOTATION_PID: str(pid),
                   ANNOTATION_HEARTBEAT: str(int(local_heartbeat if local_heartbeat is not None
                                                 else NOW - age))}
    if keep:
        annotations[ANNOTATION_KEEP] = "true"
    metadata = {"name": "pw-x", "annotations": annotations,
                "labels": {RUN_LABEL: "abc123", "app.kubernetes.io/managed-by": "packetwalk"},
                "creationTimestamp": stamp(NOW - age - 100),
                "managedFields": [{"manager": "packetwalk", "time": stamp(NOW - age)}]}
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


def test_namespace_without_the_run_marks_is_never_touched():
    assert not is_stale({"metadata": {"name": "pw-old"}}, NOW, "here", alive)
    bare = ns(pid=7, age=10 * STALE_AFTER)
    del bare["metadata"]["annotations"][ANNOTATION_HEARTBEAT]
    assert not is_stale(bare, NOW, "here", alive)
    unlabelled = ns(pid=7, age=10 * STALE_AFTER)
    del unlabelled["metadata"]["labels"][RUN_LABEL]
    assert not is_stale(unlabelled, NOW, "here", alive)


def test_age_is_read_on_the_servers_clock_not_the_writers():
    # Another machine's clock runs a day behind: its fresh heartbeat must not look stale.
    fresh = ns(host="ci-2", pid=7, age=10, local_heartbeat=NOW - 86400)
    assert not is_stale(fresh, NOW, "here", alive)
    # ... and a day ahead: an old run must still be swept.
    old = ns(host="ci-2", pid=7, age=STALE_AFTER + 1, local_heartbeat=NOW + 86400)
    assert is_stale(old, NOW, "here", alive)


def test_unknown_server_time_sweeps_only_dead_local_pids():
    assert not is_stale(ns(host="ci-2", pid=7, age=10 * STALE_AFTER), None, "here", alive)
    assert is_stale(ns(pid=7), None, "here", alive)


def test_last_written_is_the_newest_server_stamp():
    doc = ns(age=50)
    doc["metadata"]["managedFields"].append({"manager": "kubectl", "time": stamp(NOW - 5)})
    assert last_written(doc) == NOW - 5
    assert last_written({"metadata": {}}) is None


def test_run_namespaces():
    run = Run("abc123")
    assert (run.namespace, run.peer_namespace) == ("pw-abc123", "pw-abc123-peer")
    assert run.selector == "app.kubernetes.io/managed-by=packetwalk,packetwalk.io/run=abc123"
    assert len(Run.new().id) == 6
