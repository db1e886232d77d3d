"""NodePort from outside the cluster, through each node's IP, from the vantage point.

externalTrafficPolicy Cluster answers on every node (the entry node forwards
and SNATs). Local keeps the client's source IP and answers only on a node
with a backend: a node without one must drop the connection.
"""

import pytest


@pytest.mark.hop("node_port_external_cluster")
def test_node_port_external_cluster(outside):
    service = outside.node_port_service
    node = outside.entry_node
    to = outside.node_port(service, node, "tcp")
    outside.expect(outside.ask(outside.vantage, to, "hostname", answer=outside.server.name))


@pytest.mark.hop("node_port_external_local")
def test_node_port_external_local(outside):
    service = outside.inventory.server_service(outside.placement.server, local=True)
    node = outside.entry_node
    seen = outside.ask(outside.vantage, outside.node_port(service, node, "tcp"), "clientip",
                       source_ip=outside.vantage_address(node.ip))
    outside.expect(seen)


@pytest.mark.hop("node_port_external_local_no_backend")
def test_node_port_external_local_no_backend(outside):
    service = outside.inventory.server_service(outside.placement.server, local=True)
    node = outside.entry_node
    outside.expect(outside.ask(outside.vantage, outside.node_port(service, node, "tcp"),
                               "hostname"))
