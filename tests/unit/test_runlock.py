"""The sweep of lane lock files killed runs left behind (runlock.sweep_stale_locks),
in a directory of the test's own: a held one stays, a fresh one stays, an old
unheld one goes, nothing else is touched, and nothing fails the run."""

import fcntl
import os
import time
from pathlib import Path

import pytest

from packetwalk import runlock
from packetwalk.plugin import POLICY_LANE_LOCK_NAMES, POLICY_LOCKS
from packetwalk.runlock import STALE_LOCK_AGE, remove_lock, sweep_stale_locks

NOW = 1_800_000_000.0
OLD = NOW - STALE_LOCK_AGE - 60
FRESH = NOW - 3600


def lock_file(directory: Path, name: str, mtime: float) -> Path:
    path = directory / name
    path.write_text("")
    os.utime(path, (mtime, mtime))
    return path


def sweep(directory: Path) -> list[str]:
    return [p.name for p in sweep_stale_locks(POLICY_LANE_LOCK_NAMES, directory=directory, now=NOW)]


def test_only_old_unheld_lane_locks_are_removed(tmp_path):
    old = lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-1.lock", OLD)
    held = lock_file(tmp_path, "packetwalk-def456-network-policy-lane-2.lock", OLD)
    fresh = lock_file(tmp_path, "packetwalk-0a1b2c-network-policy-lane-1.lock", FRESH)
    others = [lock_file(tmp_path, name, OLD) for name in (
        "packetwalk-abc123-network-policy-lane-1-blocked.lock",  # a mark, not a lane's lock
        "packetwalk-abc123-network-policy.lock",
        "packetwalk-abc123-network-policy-unenforced-ipv4.lock",
        "packetwalk-abc123-network-policy-lane-1.lock.bak",
        "other-abc123-network-policy-lane-1.lock",
        "packetwalk--network-policy-lane-1.lock",
        "packetwalk-abc123-network-policy-lane-x.lock",
        "notes.txt")]
    with held.open("a") as holder:  # another open file: flock conflicts as with another process
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert sweep(tmp_path) == [old.name]
    assert not old.exists()
    assert held.exists() and fresh.exists()
    assert all(p.exists() for p in others)


def test_the_lanes_of_this_version_match_the_sweep(tmp_path):
    for name in POLICY_LOCKS:
        lock_file(tmp_path, f"packetwalk-abc123-{name}.lock", OLD)
    assert sorted(sweep(tmp_path)) == [f"packetwalk-abc123-{name}.lock" for name in POLICY_LOCKS]


def test_a_file_that_cannot_be_removed_is_skipped(tmp_path, monkeypatch):
    kept = lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-1.lock", OLD)
    gone = lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-2.lock", OLD)

    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        if self == kept:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert sweep(tmp_path) == [gone.name]
    assert kept.exists()


def test_an_unreadable_directory_sweeps_nothing(tmp_path):
    assert sweep(tmp_path / "missing") == []


def test_removing_a_runs_lock_never_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "lock_dir", lambda: tmp_path)
    path = lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-1.lock", FRESH)
    remove_lock("abc123", "network-policy-lane-1")
    assert not path.exists()
    remove_lock("abc123", "network-policy-lane-1")  # already gone

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refused)
    remove_lock("abc123", "network-policy-lane-2")


def test_the_controller_sweeps_once_and_says_so(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from packetwalk import plugin

    lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-1.lock", time.time() - STALE_LOCK_AGE - 60)
    lock_file(tmp_path, "packetwalk-abc123-network-policy-lane-2.lock", time.time())
    monkeypatch.setattr(runlock, "lock_dir", lambda: tmp_path)
    state = SimpleNamespace(notes=[])
    controller = plugin.Controller(state, SimpleNamespace(), None)
    controller._sweep_lane_locks()
    assert state.notes == [f"removed 1 stale NetworkPolicy lane lock file(s) of killed runs in {tmp_path}"]

    def broken(*args, **kwargs):
        raise RuntimeError("anything")

    monkeypatch.setattr(plugin, "sweep_stale_locks", broken)
    controller._sweep_lane_locks()  # never fails the run
    assert len(state.notes) == 1


@pytest.mark.parametrize("replaced", [False, True])
def test_a_lane_whose_file_was_swept_meanwhile_reads_taken(tmp_path, monkeypatch, replaced):
    from fixtures import policy

    monkeypatch.setattr(runlock, "lock_dir", lambda: tmp_path)
    monkeypatch.setattr(policy, "lock_path", runlock.lock_path)
    real_flock = fcntl.flock

    def flock(handle, op):
        real_flock(handle, op)
        if replaced and op & fcntl.LOCK_EX:  # swept and made anew by another worker
            path = runlock.lock_path("abc123", POLICY_LOCKS[0])
            path.unlink()
            path.write_text("")

    monkeypatch.setattr(policy.fcntl, "flock", flock)
    handle = policy._try_lane("abc123", 0)
    assert (handle is None) == replaced
    if handle is not None:
        handle.close()
