"""The retry policy of API calls, and what counts as an outage: pure, no network."""

from types import SimpleNamespace

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from packetwalk import apiretry
from packetwalk.apiretry import should_retry, unreachable

POOL = urllib3.HTTPSConnectionPool("10.250.0.10", 6443)
REFUSED = urllib3.exceptions.NewConnectionError(POOL, "Failed to establish a new connection: "
                                                "[Errno 111] Connection refused")
CONNECT_TIMEOUT = urllib3.exceptions.ConnectTimeoutError(POOL, "connect timed out")
READ_TIMEOUT = urllib3.exceptions.ReadTimeoutError(POOL, "/api/v1/nodes", "Read timed out.")


def max_retries(reason):
    return urllib3.exceptions.MaxRetryError(POOL, "/api/v1/nodes", reason)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_answers_retry_for_reads_deletes_and_patches(status):
    for method in ("GET", "DELETE", "PATCH", "PUT"):
        assert should_retry(method, status=status)


@pytest.mark.parametrize("status", [200, 201, 400, 401, 403, 404, 409, 422, 501])
def test_other_answers_never_retry(status):
    assert not should_retry("GET", status=status) and not should_retry("POST", status=status)


def test_a_create_repeats_only_when_the_server_surely_did_not_apply_it():
    assert should_retry("POST", status=429)  # rejected before it was processed
    assert not should_retry("POST", status=500) and not should_retry("POST", status=503)
    assert should_retry("POST", exc=max_retries(REFUSED))
    assert should_retry("POST", exc=CONNECT_TIMEOUT)
    assert not should_retry("POST", exc=READ_TIMEOUT)  # it may have been applied


def test_connection_failures_retry_for_reads():
    for exc in (max_retries(REFUSED), max_retries(READ_TIMEOUT), READ_TIMEOUT,
                urllib3.exceptions.ProtocolError("reset", ConnectionResetError())):
        assert should_retry("GET", exc=exc), exc


def test_errors_that_are_not_transient_never_retry():
    assert not should_retry("GET", exc=ApiException(status=0, reason="SSLError: bad cert"))
    assert not should_retry("GET", exc=ValueError("bad body"))


class Clock:
    def __init__(self, step=0.0):
        self.now, self.step, self.slept = 0.0, step, []

    def __call__(self):
        self.now += self.step  # each reading: an attempt's duration
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_a_transient_answer_is_retried_until_it_clears():
    answers = iter([SimpleNamespace(status=503, read=lambda: b""),
                    SimpleNamespace(status=429, read=lambda: b""), SimpleNamespace(status=200)])
    clock = Clock()
    assert apiretry.retrying("GET", lambda: next(answers), sleep=clock.sleep,
                             clock=clock).status == 200
    assert clock.slept == [0.5, 1.0]


def test_attempts_are_bounded_and_the_last_answer_or_error_is_kept():
    calls = []

    def always_503():
        calls.append(1)
        return SimpleNamespace(status=503, read=lambda: b"")

    clock = Clock()
    assert apiretry.retrying("GET", always_503, sleep=clock.sleep, clock=clock).status == 503
    assert len(calls) == apiretry.ATTEMPTS == 4 and clock.slept == apiretry.waits() == [0.5, 1, 2]

    def refused():
        calls.append(1)
        raise max_retries(REFUSED)

    calls.clear()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        apiretry.retrying("GET", refused, sleep=clock.sleep, clock=clock)
    assert len(calls) == apiretry.ATTEMPTS


def test_no_attempt_starts_after_the_total_bound():
    clock, started = Clock(), []

    def slow_timeout():
        started.append(clock.now)
        clock.now += 8.0  # each attempt waits 8 s for an answer that never comes
        raise READ_TIMEOUT

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        apiretry.retrying("GET", slow_timeout, sleep=clock.sleep, clock=clock)
    assert started == [0.0, 8.5] and all(t < apiretry.TOTAL for t in started)


def test_a_non_transient_error_is_raised_at_once():
    calls = []

    def forbidden():
        calls.append(1)
        raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        apiretry.retrying("GET", forbidden, sleep=lambda s: None)
    assert len(calls) == 1


def test_an_outage_is_named_in_one_short_line():
    refused = unreachable(max_retries(REFUSED))
    assert refused.endswith("[Errno 111] Connection refused") and "Pool" not in refused, refused
    assert unreachable(ApiException(status=503, reason="Service Unavailable")) == \
        "503 Service Unavailable"
    assert "Read timed out" in unreachable(READ_TIMEOUT)
    wrapped = RuntimeError("exec into pw-1/client failed")
    wrapped.__cause__ = TimeoutError("timed out")
    assert unreachable(wrapped) == "TimeoutError: timed out"


def test_answers_of_a_working_server_are_no_outage():
    assert unreachable(ApiException(status=403, reason="Forbidden")) is None
    assert unreachable(ApiException(status=500, reason="Internal Server Error")) is None
    assert unreachable(AssertionError("hop failed")) is None and unreachable(None) is None


def status_zero(beneath):
    """What the client raises for a TLS failure: ApiException(0) over urllib3's SSLError."""
    try:
        try:
            raise urllib3.exceptions.SSLError("TLS failed") from beneath
        except urllib3.exceptions.SSLError:
            raise ApiException(status=0, reason="SSLError\nHTTPSConnectionPool: ...") from None
    except ApiException as exc:
        exc.__context__.__cause__ = beneath
        return exc


def test_a_tls_handshake_that_times_out_is_an_outage_a_bad_certificate_is_not():
    timed_out = status_zero(TimeoutError("The handshake operation timed out"))
    assert should_retry("GET", exc=timed_out) and not should_retry("POST", exc=timed_out)
    assert unreachable(timed_out) == "TimeoutError: The handshake operation timed out"
    bad_cert = status_zero(ValueError("certificate verify failed"))
    assert not should_retry("GET", exc=bad_cert) and unreachable(bad_cert) is None


def test_a_refusal_right_after_the_run_bound_itself_is_retried_briefly():
    assert should_retry("POST", status=403, settling=True)
    assert not should_retry("POST", status=403) and not should_retry("GET", status=403)
    answers = iter([SimpleNamespace(status=403, read=lambda: b""), SimpleNamespace(status=201)])
    assert apiretry.retrying("POST", lambda: next(answers), settling=True,
                             sleep=lambda s: None).status == 201
