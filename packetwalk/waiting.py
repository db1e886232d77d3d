"""The one way packetwalk waits: poll a check until it holds, within a deadline.
(Waits on the run's own objects list then watch instead: listwatch.py, same timeout.)

The final error always says what was awaited, for how long, and the last
state seen, so a timeout reads as a diagnosis rather than "timed out".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """Raised when a wait's deadline passes; the message says what was awaited."""


def wait_for(what: str, check: Callable[[], T], timeout: float, interval: float = 0.5,
             state: Callable[[], str] | None = None) -> T:
    """Call `check` until it returns something truthy; return that.

    `state` (optional) describes the last state for the timeout message.
    """
    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval),
                        retry=retry_if_result(lambda value: not value))
    try:
        return retrying(check)
    except RetryError:
        raise WaitTimeout(timed_out(what, timeout, state)) from None


def timed_out(what: str, timeout: float, state: Callable[[], str] | None = None) -> str:
    """The timeout message: what was awaited, for how long, and the last state seen."""
    last = ""
    if state is not None:
        try:
            last = f"; last state: {state()}"
        except Exception as exc:  # noqa: BLE001 - the state is only a courtesy
            last = f"; last state unavailable ({exc})"
    return f"timed out after {timeout:g}s waiting for {what}{last}"
