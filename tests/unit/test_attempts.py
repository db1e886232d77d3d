"""A cell judged on its attempts: passed, broken, flaky (k/N), a blocked cell's early
stop, and the latency percentiles."""

from dataclasses import dataclass

import pytest

from packetwalk.attempts import BROKEN, FLAKY, PASSED, judge, percentile, settled
from packetwalk.hops import EXPECTED_CLASSES
from packetwalk.probes import OK, REFUSED, RESET, TIMEOUT, UNREACHABLE

OPEN, BLOCKED = EXPECTED_CLASSES["open"], EXPECTED_CLASSES["blocked"]


@dataclass
class Seen:
    cls: str
    seconds: float | None = 0.01


def test_every_attempt_passing_is_passed():
    result = judge([Seen(OK, 0.01), Seen(OK, 0.03), Seen(OK, 0.02)], OPEN)
    assert (result.state, result.attempts, result.failed) == (PASSED, 3, 0)
    assert result.ok and result.words() == "" and result.first_failed is None


def test_every_attempt_failing_is_broken():
    result = judge([Seen(TIMEOUT, 3.0)] * 3, OPEN)
    assert (result.state, result.failed, result.first_failed) == (BROKEN, 3, 0)
    assert result.words() == "broken: 3 of 3 attempts failed (TIMEOUT)"


def test_one_of_three_failing_is_flaky_with_its_count():
    result = judge([Seen(OK), Seen(TIMEOUT, 3.0), Seen(OK)], OPEN)
    assert (result.state, result.failed, result.attempts) == (FLAKY, 1, 3)
    assert result.first_failed == 1 and not result.ok
    assert result.words() == "flaky: 1 of 3 attempts failed (TIMEOUT)"
    mixed = judge([Seen(REFUSED), Seen(TIMEOUT), Seen(OK), Seen(OK)], OPEN)
    assert mixed.words() == "flaky: 2 of 4 attempts failed (REFUSED, TIMEOUT)"


def test_a_blocked_cell_stops_at_its_first_definite_refusal():
    result = judge([Seen(REFUSED, 0.002), Seen(OK), Seen(OK)], BLOCKED)
    assert (result.state, result.attempts, result.classes) == (PASSED, 1, (REFUSED,))
    assert settled(Seen(REFUSED), BLOCKED) and settled(Seen(UNREACHABLE), BLOCKED)
    assert not settled(Seen(RESET), BLOCKED)  # definite, but no block: it fails the cell
    # A timeout is a block, but no definite one: the next attempts still count.
    assert not settled(Seen(TIMEOUT), BLOCKED)
    leaky = judge([Seen(TIMEOUT), Seen(OK), Seen(REFUSED)], BLOCKED)
    assert (leaky.state, leaky.attempts, leaky.failed) == (FLAKY, 3, 1)
    # An open cell refused is a failure, never a reason to stop.
    assert not settled(Seen(REFUSED), OPEN)
    assert judge([Seen(REFUSED), Seen(OK), Seen(OK)], OPEN).state == FLAKY
    assert judge([Seen(OK)] * 3, BLOCKED).words() == "broken: 3 of 3 attempts failed (OK)"


def test_latency_percentiles_are_measured_values():
    seconds = [0.010 * n for n in range(1, 101)]
    result = judge([Seen(OK, s) for s in seconds], OPEN)
    assert (result.p50, result.p99) == (0.5, 0.99)
    assert percentile([0.3, 0.1, 0.2], 0.5) == 0.2 and percentile([0.3, 0.1, 0.2], 0.99) == 0.3
    assert percentile([], 0.5) is None
    assert judge([Seen(OK, None)], OPEN).p50 is None  # a fact, not a timed probe


def test_no_attempt_is_no_verdict():
    with pytest.raises(ValueError):
        judge([], OPEN)
