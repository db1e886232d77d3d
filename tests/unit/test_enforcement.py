"""The run's NetworkPolicy enforcement times: summed up, and the slow ones named."""

from packetwalk.records import ProbeRecord
from packetwalk.report import enforcement, html, terminal
from packetwalk.report.results import PASSED
from packetwalk.report.results import TestResult as Result


def result(tid: str, *seconds: float | None) -> Result:
    records = [ProbeRecord(hop="network_policy", cls="OK", enforced_after=s) for s in seconds]
    return Result(f"suites/east_west/test_network_policy.py::{tid}", PASSED, "OK", 0.1,
                      hop="network_policy", records=records)


def test_no_policy_case_no_line():
    assert enforcement.lines([result("test_pod_ip[same-node-tcp]", None)]) == []


def test_median_and_slowest_with_its_test():
    results = [result("test_network_policy[a]", 0.5, None, 1.5),
               result("test_network_policy[b]", 2.5)]
    assert enforcement.lines(results) == [
        "NetworkPolicy enforced after: 3 changes, p50 1.5s, max 2.5s (test_network_policy[b])"]


def test_slow_enforcement_is_flagged_with_where():
    results = [result("test_network_policy[a]", 0.4), result("test_network_policy[b]", 7.2)]
    found = enforcement.lines(results, slow_after=5.0)
    assert found[1] == "slow NetworkPolicy enforcement (over 5s): test_network_policy[b] 7.2s"


def test_terminal_and_html_carry_the_same_lines():
    results = [result("test_network_policy[b]", 6.0)]
    expected = enforcement.lines(results)
    assert all(line in terminal.lines(results) for line in expected)
    page = "".join(html.notes(expected, "pw-enforcement"))
    assert 'id="pw-enforcement"' in page and "slow NetworkPolicy enforcement" in page


def test_the_cells_of_one_change_count_it_once():
    # Three cells converged on the same change: each record carries its 8.5 s.
    results = [result("test_network_policy[protocol-only]", 8.5, 8.5, 8.5, 0.3)]
    assert enforcement.lines(results, slow_after=5.0) == [
        ("NetworkPolicy enforced after: 2 changes, p50 4.4s, max 8.5s "
         "(test_network_policy[protocol-only])"),
        "slow NetworkPolicy enforcement (over 5s): test_network_policy[protocol-only] 8.5s"]
