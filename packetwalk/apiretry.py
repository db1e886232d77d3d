"""Transient API errors retried a bounded number of times, in one place: the
ApiClient every run-side call goes through; and what an outage looks like.

Retried: 429 and 500/502/503/504 answers, and connections that failed or timed
out. A request that may already have been applied (a POST whose answer was
lost, or that got a 5xx) is not repeated: only a 429 or a connection that never
opened is, so a create never meets its own earlier success as a conflict.
At most ATTEMPTS attempts, and no new one TOTAL seconds after the first began.
Websocket exec (kubernetes.stream) replaces call_api on the client, so an exec
is never retried here.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable
from typing import Any

import urllib3
import websocket
from kubernetes.client import ApiClient, Configuration, VersionApi
from kubernetes.client.rest import ApiException

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
GONE_STATUS = frozenset({502, 503, 504})  # answered, but only by a proxy or a server without a backend
ATTEMPTS = 4
TOTAL = 15.0  # seconds after the first attempt's start: no new attempt begins later
FIRST_WAIT, MAX_WAIT = 0.5, 4.0
SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
QUICK_TIMEOUT = (3, 3)  # connect, read: "is anyone there" before errors are blamed on an outage
OUTAGE = "the API server stopped answering"
# After the run binds itself rights (selfbind.py), RBAC's cache may refuse them for a moment.
SETTLE = 10.0
ROLE_BINDINGS = re.compile(r"/apis/rbac\.authorization\.k8s\.io/v1/namespaces/[^/]+/rolebindings\b")


# What breaks when there is no server to talk to (socket.timeout is TimeoutError).
BELOW_HTTP = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError,
              websocket.WebSocketTimeoutException, websocket.WebSocketConnectionClosedException)


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def never_sent(exc: BaseException) -> bool:
    """The request never reached the server (refused, unreachable, connect timeout)."""
    for link in _chain(exc):
        if (isinstance(link, urllib3.exceptions.MaxRetryError) and link.reason is not None
                and never_sent(link.reason)):
            return True
        if isinstance(link, (urllib3.exceptions.NewConnectionError,
                             urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError)):
            return True
    return False


def connection_failure(exc: BaseException) -> bool:
    """The exchange broke below HTTP: no connection, a reset, or no answer in time.
    A TLS error counts only as far as a timeout lies beneath it (a bad certificate
    is no outage)."""
    for link in _chain(exc):
        if isinstance(link, urllib3.exceptions.MaxRetryError) and link.reason is not None:
            return connection_failure(link.reason)
        if isinstance(link, BELOW_HTTP) and not isinstance(link, urllib3.exceptions.SSLError):
            return True
    return False


def should_retry(method: str, status: int | None = None,
                 exc: BaseException | None = None, settling: bool = False) -> bool:
    """Whether one failed attempt of `method` is worth another (pure). `settling`:
    the run bound itself rights moments ago, and the authorizer's cache may lag,
    so a 403 (refused before anything was done) is worth another try."""
    repeatable = method.upper() in SAFE_TO_REPEAT
    if status is not None:
        return (status == 429 or (repeatable and status in TRANSIENT_STATUS)
                or (settling and status == 403))
    if exc is None or (isinstance(exc, ApiException) and exc.status):
        return False
    return never_sent(exc) or (repeatable and connection_failure(exc))


def waits(attempts: int = ATTEMPTS) -> list[float]:
    """The pause before each retry: 0.5, 1, 2, ... capped at MAX_WAIT (pure)."""
    return [min(FIRST_WAIT * 2 ** i, MAX_WAIT) for i in range(attempts - 1)]


def retrying(method: str, attempt: Callable[[], Any], *, settling: bool = False,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> Any:
    """attempt() until it returns a non-transient answer (anything with .status), raises
    a non-transient error, or the bounds are reached; then the last answer or error."""
    started = clock()
    pauses = waits()

    def spent(n: int) -> bool:
        return n == ATTEMPTS - 1 or clock() - started + pauses[n] > TOTAL

    for n in range(ATTEMPTS):
        try:
            answer = attempt()
        except Exception as exc:
            if not should_retry(method, exc=exc) or spent(n):
                raise
        else:
            status = getattr(answer, "status", None)
            if not should_retry(method, status=status, settling=settling) or spent(n):
                return answer
            _release(answer)
        sleep(pauses[n])
    raise AssertionError("unreachable: the last attempt returns or raises")


def _release(answer: Any) -> None:
    """Read a discarded answer so its connection goes back to the pool."""
    with contextlib.suppress(Exception):  # a broken body of an answer we drop anyway
        answer.read()


class RetryingApiClient(ApiClient):
    """An ApiClient whose every request is retried per should_retry."""

    _bound_at = float("-inf")  # when this client last created a RoleBinding

    def call_api(self, method, url, header_params=None, body=None, post_params=None,
                 _request_timeout=None):
        settling = time.monotonic() - self._bound_at < SETTLE
        answer = retrying(method, lambda: super(RetryingApiClient, self).call_api(
            method, url, header_params=header_params, body=body, post_params=post_params,
            _request_timeout=_request_timeout), settling=settling)
        if method.upper() == "POST" and ROLE_BINDINGS.search(url) and answer.status == 201:
            self._bound_at = time.monotonic()
        return answer


def client(configuration: Configuration) -> ApiClient:
    return RetryingApiClient(configuration)


def describe(exc: BaseException) -> str:
    """One short line for a connection-level failure or an API error."""
    for link in _chain(exc):
        if isinstance(link, urllib3.exceptions.MaxRetryError) and link.reason is not None:
            return describe(link.reason)
        if isinstance(link, ApiException) and link.status:  # 0: the client's own, look beneath
            return f"{link.status} {link.reason}".strip()
        if isinstance(link, urllib3.exceptions.NewConnectionError):
            return str(link).split(": ", 1)[-1]
        if isinstance(link, BELOW_HTTP) and not isinstance(link, urllib3.exceptions.SSLError):
            return _line(link)
    return _line(exc)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def unreachable(exc: BaseException | None) -> str | None:
    """The one-line reason when `exc` means the API server could not be talked to
    (a connection that failed, or a gateway answer), else None (pure)."""
    if exc is None:
        return None
    for link in _chain(exc):
        if isinstance(link, ApiException) and link.status in GONE_STATUS:
            return describe(link)
    return describe(exc) if connection_failure(exc) else None


class ApiUnreachable(Exception):
    """A test could not run: the API server did not answer."""


def answering(configuration: Configuration) -> str | None:
    """None if the API server answers /version within seconds, else why not.
    One plain attempt: this is the check that decides, it must be quick."""
    quick = copy.copy(configuration)
    quick.retries = False  # urllib3's own retry would double the wait
    api = ApiClient(quick)
    try:
        VersionApi(api).get_code(_request_timeout=QUICK_TIMEOUT)
    except ApiException as exc:
        return describe(exc) if exc.status in GONE_STATUS or exc.status == 0 else None
    except Exception as exc:  # noqa: BLE001 - whatever broke, the server did not answer
        return describe(exc)
    finally:
        api.close()
    return None
