"""NetworkPolicy: each case applies policies and checks its truth table (hops.POLICY_CASES).

Default-deny ingress (pod IP and ClusterIP), allow by podSelector, allow by
namespaceSelector, a port-scoped allow, egress deny, egress only to DNS, and
removing a policy restores traffic. Each case first checks the cells are all
open without any policy, so a broken network is not mistaken for enforcement.
"""

import pytest

from packetwalk.hops import POLICY_CASES


@pytest.mark.hop("network_policy")
def test_network_policy(policy, variant):
    policy.check(variant, POLICY_CASES[variant])
