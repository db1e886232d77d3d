"""CMD of --during: the durations of its options, how it runs and is timed, and what
is said when it is not found, fails or is interrupted."""

import signal
import threading
import time

import pytest

from packetwalk.during import Ran, parse_duration, pause, run


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("500ms", 0.5), ("2m", 120),
                                           ("1.5", 1.5), (" 5s ", 5)])
def test_durations(text, seconds):
    assert parse_duration("--settle", text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "5h", "five"])
def test_a_bad_duration_is_one_line(text):
    with pytest.raises(ValueError) as caught:
        parse_duration("--max-outage", text)
    assert str(caught.value) == (f"--max-outage {text!r}: expected a duration such as 30s, "
                                 "500ms or 2m")


def test_cmd_runs_in_a_shell_timed_with_the_lease_renewed_meanwhile():
    ticks = []
    before = time.time()
    ran = run("sleep 0.35; exit 0", lambda: ticks.append(time.time()), every=0.1)
    assert ran.ok and ran.rc == 0 and before <= ran.start <= ran.end
    assert ran.end - ran.start == pytest.approx(0.35, abs=0.15)
    assert len(ticks) >= 2
    assert ran.words().startswith("CMD exited 0 after 0.")


def test_a_cmd_not_found_or_failing_says_so():
    missing = run("no-such-command-pw --x", lambda: None, every=1)
    assert missing.rc == 127 and not missing.ok
    assert missing.words().startswith("CMD not found (exit 127) after ")
    assert missing.words().endswith(": no-such-command-pw --x")
    failing = run("exit 3", lambda: None, every=1)
    assert (failing.rc, failing.ok) == (3, False) and "CMD exited 3" in failing.words()


def test_an_interrupt_stops_cmd_and_carries_what_ran(sigint):
    timer = threading.Timer(0.3, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as caught:
        run("sleep 30", lambda: None, every=0.05)
    assert time.monotonic() - started < 5  # sleep 30 was stopped, not waited for
    ran = caught.value.ran
    assert ran.interrupted and not ran.ok and ran.end is not None
    assert ran.words().startswith("CMD was interrupted after 0.")
    assert Ran.from_json(ran.to_json()) == ran


def test_pause_ticks_while_it_waits():
    ticks = []
    started = time.monotonic()
    pause(0.35, lambda: ticks.append(1), every=0.1)
    # loose: a unit test on a busy machine (the lab up beside it) must not flake
    assert time.monotonic() - started == pytest.approx(0.35, abs=0.25) and 2 <= len(ticks) <= 4
