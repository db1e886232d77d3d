"""NodePort: from a pod to nodeIP:nodePort, on the server's node and on the other one.

On the other node kube-proxy must DNAT and forward across nodes (and SNAT so
the answer comes back the same way).
"""

import pytest


@pytest.mark.hop("node_port_server_node")
def test_node_port_on_server_node(walk, protocol):
    server = walk.server
    to = walk.node_port(walk.node_port_service, walk.placement.server, protocol)
    walk.expect(walk.ask(walk.client, to, "hostname", answer=server.name))


@pytest.mark.hop("node_port_other_node")
def test_node_port_on_other_node(walk, protocol):
    server = walk.server
    to = walk.node_port(walk.node_port_service, walk.placement.other, protocol)
    walk.expect(walk.ask(walk.client, to, "hostname", answer=server.name))
