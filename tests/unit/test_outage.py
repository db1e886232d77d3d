"""A watched cell's probes as outage windows, the longest, the lost count, the state at
the end and the verdict against --max-outage; the pod's clock against the controller's."""

import pytest

from packetwalk.outage import CellWatch, Offset, Sample, clock_offset, joined, watch_of
from packetwalk.probes import OK, REFUSED, TIMEOUT

CMD_START = 1000.0


def probes(pattern: str, start: float = 999.0, interval: float = 0.2) -> list[Sample]:
    """'..xx.' -> samples every `interval` from `start`: '.' answered, 'x' a TIMEOUT,
    'r' a REFUSED."""
    cls = {".": OK, "x": TIMEOUT, "r": REFUSED}
    return [Sample(round(start + i * interval, 3), c == ".", cls[c])
            for i, c in enumerate(pattern)]


def test_no_loss_is_no_window_and_passes():
    watch = watch_of(probes("." * 51), CMD_START)
    assert (watch.sent, watch.lost, watch.windows) == (51, 0, ())
    assert watch.longest is None and watch.longest_seconds == 0.0
    assert watch.rate == pytest.approx(5.0) and watch.max_gap == pytest.approx(0.2)
    assert (watch.first, watch.last) == (-1.0, 9.0)
    assert watch.failures(5.0) == [] and not watch.broken_at_end and watch.end_class == OK


def test_a_window_runs_from_its_first_lost_send_to_the_next_answered_send():
    # sends at 999.0 + 0.2 i: lost i = 10..59, i.e. from 1001.0, answered again at 1011.0
    watch = watch_of(probes("." * 10 + "x" * 50 + "." * 10), CMD_START)
    (window,) = watch.windows
    assert (window.start, window.end, window.duration, window.lost) == (1.0, 11.0, 10.0, 50)
    assert window.classes == (TIMEOUT,) and not window.open
    assert watch.lost == 50 and watch.longest is window
    assert watch.failures(10.0) == []
    (line,) = watch.failures(2.0)
    assert line == ("longest outage 10.0 s from +1.0 s to +11.0 s (50 lost: TIMEOUT) "
                    "exceeds --max-outage 2 s")


def test_windows_are_kept_apart_and_the_longest_is_named():
    watch = watch_of(probes("..x....xxrx...xx."), CMD_START)
    assert [(w.lost, w.classes) for w in watch.windows] == [
        (1, (TIMEOUT,)), (4, (TIMEOUT, REFUSED)), (2, (TIMEOUT,))]
    assert watch.longest.lost == 4 and watch.longest_seconds == pytest.approx(0.8)
    assert watch.lost == 7 and watch.sent == 17


def test_samples_in_any_order_give_the_same_watch():
    samples = probes("...xxx...")
    assert watch_of(list(reversed(samples)), CMD_START) == watch_of(samples, CMD_START)


def test_still_lost_at_the_end_is_an_open_window_and_fails_whatever_the_bound():
    watch = watch_of(probes("....rrrr"), CMD_START)
    (window,) = watch.windows
    assert window.open and window.end == pytest.approx(0.4)  # the last send, 999 + 7 * 0.2
    assert watch.broken_at_end and watch.end_class == REFUSED
    assert watch.failures(60.0) == [
        "broken at the end: every probe since -0.2 s was lost (REFUSED)"]
    assert "the end of the watch" in window.words()


def test_a_cell_that_sent_nothing_fails():
    watch = watch_of([], CMD_START)
    assert (watch.sent, watch.first, watch.rate, watch.end_class) == (0, None, 0.0, "")
    assert watch.failures(5.0) == ["no probe was sent: the cell's probe loop never ran"]


def test_a_stalled_loop_shows_as_a_gap_not_as_an_outage():
    samples = probes("....") + probes("....", start=1003.0)
    watch = watch_of(samples, CMD_START)
    assert watch.windows == () and watch.max_gap == pytest.approx(3.4)
    assert watch.gaps() and not watch_of(probes("...."), CMD_START).gaps()


def test_the_json_has_every_window_and_reads_back():
    watch = watch_of(probes("..xx..xxx"), CMD_START, clock_error=0.004)
    data = watch.to_json()
    assert [w["duration"] for w in data["windows"]] == [0.4, pytest.approx(0.4)]
    assert data["windows"][1]["open"] and data["longest_outage"] == pytest.approx(0.4)
    assert (data["lost"], data["sent"], data["clock_error"]) == (5, 9, 0.004)
    assert CellWatch.from_json(data) == watch


def test_summary_states_rate_gap_and_clock_error():
    watch = watch_of(probes("..xx.."), CMD_START, clock_error=0.012)
    assert watch.summary() == ("6 sent, 2 lost, 1 outage, longest 0.4 s; 5.0/s, largest gap "
                               "0.20 s, clock ±0.012 s")


def test_clock_offset_is_the_middle_of_the_round_trip_and_half_of_it_the_error():
    assert clock_offset(100.0, 105.03, 100.04) == Offset(pytest.approx(5.01), pytest.approx(0.02))
    # read again at the end: the error also covers the drift between the two reads
    both = joined(Offset(5.01, 0.02), Offset(5.04, 0.01))
    assert both.offset == 5.01 and both.error == pytest.approx(0.05)
