"""A lock shared by the xdist workers of one run (they share a host).

NetworkPolicy cases change what the policy pods may reach, so two cases must
never overlap; every other test runs freely beside them.

A run removes its lock files when it ends; a killed run leaves them behind, so
the next run's controller sweeps those no process holds that are over a day old
(sweep_stale_locks).
"""

from __future__ import annotations

import fcntl
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_LOCK_AGE = 24 * 3600  # seconds: a lock file untouched this long is a dead run's


def lock_dir() -> Path:
    return Path(tempfile.gettempdir())


def lock_path(run_id: str, name: str) -> Path:
    return lock_dir() / f"packetwalk-{run_id}-{name}.lock"


@contextmanager
def run_lock(run_id: str, name: str) -> Iterator[None]:
    """Hold an exclusive flock on the run's lock file for `name`. The kernel
    drops it if the holder dies, so a killed worker cannot wedge the others."""
    path = lock_path(run_id, name)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_lock(run_id: str, name: str) -> None:
    """Best effort: a file another user owns (sticky /tmp) stays, the run goes on."""
    try:
        lock_path(run_id, name).unlink(missing_ok=True)
    except OSError:
        pass


def sweep_stale_locks(name: str, older_than: float = STALE_LOCK_AGE, directory: Path | None = None,
                      now: float | None = None) -> list[Path]:
    """Remove the lock files of any run, `packetwalk-<run>-<name>.lock` with `name` a
    regular expression, that no process holds (a non-blocking flock succeeds) and
    whose mtime is over `older_than` seconds ago; returns those removed. Nothing
    else in `directory` (lock_dir()) is touched, and nothing fails: a file that
    cannot be opened, locked or removed is skipped."""
    directory = lock_dir() if directory is None else directory
    pattern = re.compile(rf"packetwalk-[0-9A-Za-z]+-(?:{name})\.lock")
    cutoff = (time.time() if now is None else now) - older_than
    removed = []
    try:
        candidates = sorted(directory.iterdir())
    except OSError:
        return removed
    for path in candidates:
        if not pattern.fullmatch(path.name):
            continue
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_mtime > cutoff:
                continue
            with path.open("rb") as handle:  # read-only: flock needs no more, and creates nothing
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # held: a live run's lane
                path.unlink()  # while held, so no one takes it between the look and the removal
            removed.append(path)
        except OSError:
            continue  # another user's file, gone meanwhile, ...: not ours to sweep
    return removed
