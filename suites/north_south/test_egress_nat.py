"""Egress NAT: a pod reaches a target outside the cluster, which sees the node's address.

Nodes masquerade pod traffic leaving the cluster; the target seeing a pod IP
means the masquerade rule is missing (the answer then has no way back, or
leaks pod addresses). Each node's client pod is asked in turn. On a dual-stack
cluster once per family, each at its family's target; a family the nodes route
out without NAT (the lab says so) expects the pod's own address.
"""

import pytest


@pytest.mark.hop("egress_nat")
def test_egress_nat(outside):
    to = outside.external()
    if to is None:
        pytest.skip(outside.no_target())
    client = outside.egress_client
    seen = outside.ask(client, to, "clientip", source_ip=outside.egress_sources(client))
    outside.expect(seen)
