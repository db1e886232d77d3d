"""LoadBalancer: the Service's external address answers from the vantage point.

Only with --load-balancer (the Service may get a public address). Tested when
the cluster offers load balancers (the Service gets an address); otherwise,
or when the cluster refused the Service, skipped with that reason.
"""

import pytest

from packetwalk.offers import load_balancer_address


@pytest.mark.hop("load_balancer")
def test_load_balancer(outside, cluster_api):
    servers = outside.service("servers-lb")
    address, why_not = load_balancer_address(cluster_api, servers.namespace, servers.name)
    if address is None:
        pytest.skip(why_not)
    to = outside.http_at(address, servers.ports["http"], f"LoadBalancer of {servers.name}")
    outside.expect(outside.ask(outside.vantage, to, "hostname", answer=servers.backends))
