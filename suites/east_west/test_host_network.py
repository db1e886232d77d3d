"""Pod <-> node: a pod reaches a node's own network namespace, and a node reaches a pod.

The node side is a hostNetwork probe pod. Pod-to-pod works but this fails:
the node's routes to the pod CIDR or its host firewall.
"""

import pytest


@pytest.mark.hop("pod_to_node")
def test_pod_to_node(walk, protocol):
    node = walk.host("server")
    walk.expect(walk.ask(walk.client, walk.pod_ip(node, protocol), "hostname"))


@pytest.mark.hop("node_to_pod")
def test_node_to_pod(walk, protocol):
    server = walk.server
    seen = walk.ask(walk.host("client"), walk.pod_ip(server, protocol), "hostname",
                    answer=server.name)
    walk.expect(seen)
