"""Issue 16's proof on the lab: a watch (--during) while a fault is injected and
healed 10 s later shows the outage on exactly the cells the fault breaks, as long
as it lasted, and no outage on the others.

The truth is the lab's own: `packetwalk lab fault` and `heal` journal the instant
each change took effect (journal.read()). The cells that should redden are the
self-check's typed sets for the same fault, kept in tests/unit (TYPED).
"""

import json

import pytest

from packetwalk.lab import journal
from tests.suiterun import run_suites
from tests.unit.test_selfcheck_expected import TYPED

pytestmark = pytest.mark.lab

FAULT, NODE, HELD = "kube-proxy-broken", "pw-worker", 10
CMD = f"packetwalk lab fault {FAULT} --node {NODE}; sleep {HELD}; packetwalk lab heal"
TOLERANCE = 1.0  # seconds: the issue's ±1 s against the journal's instants
# A UDP try can get through mid-outage: kube-proxy's cleanup removes its rules, not the
# conntrack entries they made, and a try that happens to reuse the source port of an
# earlier one rides that entry's DNAT, as an established flow does on a real node.
# CI saw it once: test_cluster_ip[same-node-udp] lost 54 of 55 tries, split into 3.4 s
# and 7.4 s by one answer. Windows apart by at most this much are one outage.
RIDE_THROUGH = 0.5  # seconds: one try slot (0.2 s) and its jitter
RIDERS = 2  # at most this many tries through per outage


def outage(windows: list[dict]) -> tuple[dict, int]:
    """The longest run of windows apart by at most RIDE_THROUGH, as one window (start,
    end, duration, lost), and how many gaps it bridged."""
    runs: list[list[dict]] = []
    for w in sorted(windows, key=lambda w: w["start"]):
        if runs and w["start"] - runs[-1][-1]["end"] <= RIDE_THROUGH:
            runs[-1].append(w)
        else:
            runs.append([w])
    best = max(runs, key=lambda r: r[-1]["end"] - r[0]["start"])
    merged = {"start": best[0]["start"], "end": best[-1]["end"],
              "duration": best[-1]["end"] - best[0]["start"], "lost": sum(w["lost"] for w in best)}
    return merged, len(best) - 1


def test_a_watch_times_a_kube_proxy_outage_on_exactly_its_cells(lab, tmp_path):
    since = len(journal.read())
    results = tmp_path / "watch.json"
    run = run_suites(tmp_path, "suites/east_west",
                     extra=("--during", CMD, "--max-outage", "2s", f"--results-json={results}"),
                     timeout=600)
    events = {e["event"]: e["at"] for e in journal.read()[since:] if e["what"] == FAULT}
    assert set(events) == {"injected", "healed"}, (events, run.output[-3000:])
    watch = json.loads(results.with_suffix(".watch.json").read_text())
    start = watch["ran"]["start"]  # CMD's start, the windows' zero
    began, ended = events["injected"] - start, events["healed"] - start

    typed = TYPED[FAULT]
    red = typed.failing.union(*typed.blocked.values())
    expected = red & set(watch["cells"])
    assert len(watch["cells"]) == 17 and len(expected) == 9, sorted(watch["cells"])
    assert run.failed == expected, (sorted(run.failed ^ expected), run.output[-3000:])

    truth = f"injected at +{began:.2f} s, healed at +{ended:.2f} s"
    for test, cell in watch["cells"].items():
        windows = cell["windows"]
        if test not in expected:
            # No outage where nothing was injected. A lone lost probe is not an outage:
            # on this 2-CPU machine a try forked late under load can miss its 0.5 s wait
            # (docs/watch.md: single losses on unbroken cells while the machine is
            # busiest); two consecutive losses are. A window over before CMD began is the
            # warm-up's, not the fault's: a fresh-clone CI rehearsal saw the NodePort on
            # the other node REFUSED from -1.98 to -1.50 s (its kube-proxy had not yet
            # programmed the run's new endpoints when the pods turned Ready).
            windows = [w for w in windows if w["end"] >= 0]
            assert all(w["lost"] == 1 for w in windows), \
                f"{test}: outages where none was injected ({truth}): {windows}"
            continue
        longest, bridged = outage(windows)
        assert bridged <= RIDERS, (test, truth, windows)
        assert abs(longest["start"] - began) <= TOLERANCE, (test, truth, longest)
        assert abs(longest["end"] - ended) <= TOLERANCE, (test, truth, longest)
        assert abs(longest["duration"] - (ended - began)) <= TOLERANCE, (test, truth, longest)
        assert not cell["broken_at_end"], (test, truth, cell["end_class"], cell["windows"][-4:])
