"""NetworkPolicy: each case applies policies and checks its truth table (hops.POLICY_CASES).

The basics (default deny, allow by pod or namespace selector, one port, egress
deny, egress only to DNS, removal) and the upstream behaviours beyond them:
named ports (ingress, egress), ipBlock except, matchExpressions and the
kubernetes.io/metadata.name label, pod AND namespace selectors against OR,
stacked policies and allow-all, a policy updated in place, pods and a namespace
relabelled into and out of a policy (each change timed to enforcement),
policyTypes, protocol-only and UDP-only rules, an egress deny that beats an
ingress allow, and SCTP rules that must not open TCP (skipped without SCTP).
Each case first checks its cells are all open without any policy, so a broken
network is not mistaken for enforcement.
"""

import pytest

from packetwalk.hops import POLICY_CASES


@pytest.mark.hop("network_policy")
def test_network_policy(policy, variant):
    case = POLICY_CASES[variant]
    why = policy.unmet(case)
    if why:
        pytest.skip(why)
    policy.check(variant, case)
