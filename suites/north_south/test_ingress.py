"""Ingress: an Ingress to the servers answers from the vantage point.

Tested only when the cluster has an IngressClass (the first by name is used);
otherwise skipped with that reason.
"""

import pytest

from packetwalk.offers import expose_by_ingress, ingress_classes, ingress_manifest


@pytest.mark.hop("ingress")
def test_ingress(outside, cluster_api):
    classes, why_not = ingress_classes(cluster_api)
    if not classes:
        pytest.skip(why_not)
    servers = outside.service("servers")
    manifest = ingress_manifest(servers.namespace, outside.inventory.run_id, classes[0],
                                servers.name, servers.ports["http"])
    address, why_not = expose_by_ingress(cluster_api, manifest)
    if address is None:
        pytest.skip(why_not)
    to = outside.http_at(address, 80, f"Ingress of {servers.name} (class {classes[0]})")
    outside.expect(outside.ask(outside.vantage, to, "hostname", answer=servers.backends))
