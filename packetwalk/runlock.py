"""A lock shared by the xdist workers of one run (they share a host).

NetworkPolicy cases change what the policy pods may reach, so two cases must
never overlap; every other test runs freely beside them.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(run_id: str, name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"packetwalk-{run_id}-{name}.lock"


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
    lock_path(run_id, name).unlink(missing_ok=True)
