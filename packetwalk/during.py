"""CMD of `--during CMD`: the change the watch measures. Its options' durations, how it
runs, and what became of it.

CMD runs in a shell (`bash -c`, so `a; sleep 10; b` reads as typed) from the directory
pytest runs in, its output going to pytest's own terminal, and is timed on the
controller's clock (time.time(), the clock the pods' offsets are measured against).
A CMD that is not found (exit 127) or exits non-zero is reported as such; the watch
still ends and its timeline is still written. Interrupted (Ctrl-C, SIGTERM), CMD is
stopped too: SIGTERM, then SIGKILL after KILL_AFTER seconds.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

KILL_AFTER = 5.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(option: str, text: str) -> float:
    """'30s', '500ms', '2m' or bare seconds ('1.5') -> seconds; ValueError (one line)."""
    found = _DURATION.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{option} {text!r}: expected a duration such as 30s, 500ms or 2m")
    return float(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True)
class Ran:
    """What became of CMD: when it started and ended (the controller's clock; `end`
    None: it never ended, the watch was interrupted), its exit code (None: none)."""

    command: str
    start: float
    end: float | None
    rc: int | None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.interrupted

    def words(self) -> str:
        """'CMD exited 0 after 12.3 s', 'CMD not found (exit 127)', ..."""
        took = f" after {self.end - self.start:.1f} s" if self.end is not None else ""
        if self.interrupted:
            return f"CMD was interrupted{took}" + (f" (exit {self.rc})" if self.rc is not None
                                                  else "")
        if self.rc == 127:
            return f"CMD not found (exit 127){took}: {self.command}"
        return f"CMD exited {self.rc}{took}" + ("" if self.rc == 0 else f": {self.command}")

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> Ran:
        return Ran(**data)


def run(command: str, tick: Callable[[], None], every: float,
        clock: Callable[[], float] = time.time) -> Ran:
    """Run CMD to its end, calling `tick` every `every` seconds meanwhile (the watch
    renews its loops' lease). KeyboardInterrupt stops CMD and is raised again, carrying
    the Ran so far as its `ran`."""
    start = clock()
    proc = subprocess.Popen(["bash", "-c", command])
    try:
        while True:
            try:
                rc = proc.wait(timeout=every)
                return Ran(command, start, clock(), rc)
            except subprocess.TimeoutExpired:
                tick()
    except KeyboardInterrupt as exc:
        proc.terminate()
        try:
            rc = proc.wait(timeout=KILL_AFTER)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        exc.ran = Ran(command, start, clock(), rc, interrupted=True)
        raise


def pause(seconds: float, tick: Callable[[], None], every: float) -> None:
    """Sleep `seconds` (the settle period), calling `tick` every `every` seconds."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, every))
        if end - time.monotonic() > 0:
            tick()
