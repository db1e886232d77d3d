"""NodePort from outside the cluster, through each node's IP, from the vantage point.

externalTrafficPolicy Cluster answers on every node (the entry node forwards
and SNATs). Local keeps the client's source IP and answers only on a node
with a backend: a node without one must drop the connection. On a dual-stack
cluster once per family: the node's address in it, from the vantage point's.
"""

import pytest


@pytest.mark.hop("node_port_external_cluster")
def test_node_port_external_cluster(outside):
    to = outside.node_port(outside.node_port_service, outside.entry_node, "tcp")
    outside.label_vantage(to.ip)  # dual-stack: the probe's source in the family
    outside.expect(outside.ask(outside.vantage, to, "hostname", answer=outside.server.name))


@pytest.mark.hop("node_port_external_local")
def test_node_port_external_local(outside):
    service = outside.inventory.server_service(outside.placement.server, local=True)
    to = outside.node_port(service, outside.entry_node, "tcp")
    seen = outside.ask(outside.vantage, to, "clientip", source_ip=outside.vantage_source(to.ip))
    outside.expect(seen)


@pytest.mark.hop("node_port_external_local_no_backend")
def test_node_port_external_local_no_backend(outside):
    service = outside.inventory.server_service(outside.placement.server, local=True)
    to = outside.node_port(service, outside.entry_node, "tcp")
    outside.label_vantage(to.ip)
    outside.expect(outside.ask(outside.vantage, to, "hostname"))
