"""Ingress: an Ingress to the servers answers from the vantage point.

Only with --ingress (the controller may expose it publicly): the run then
creates an Ingress for the cluster's first IngressClass (by name). Skipped
with the reason when not asked for, when the cluster has no IngressClass or
refused the Ingress, or when it never gets an address.
"""

import pytest

from packetwalk.offers import ingress_address_of


@pytest.mark.hop("ingress")
def test_ingress(outside, cluster_api):
    servers = outside.service("servers")
    address, why_not = ingress_address_of(cluster_api, servers.namespace, "servers")
    if address is None:
        pytest.skip(why_not)
    to = outside.http_at(address, 80, f"Ingress of {servers.name}")
    outside.expect(outside.ask(outside.vantage, to, "hostname", answer=servers.backends))
