"""Service translation: the ClusterIP reaches the right backend, and every backend.

A ClusterIP is kube-proxy's DNAT to a pod IP; when it fails and the PodIP
works, the Service layer is at fault.
"""

import pytest


@pytest.mark.hop("cluster_ip")
def test_cluster_ip(walk, protocol):
    """The server's own Service: exactly that server must answer."""
    server = walk.server
    seen = walk.ask(walk.client, walk.cluster_ip(walk.server_service, protocol), "hostname",
                    answer=server.name)
    walk.expect(seen)


@pytest.mark.hop("cluster_ip_backends")
def test_cluster_ip_every_backend(walk, protocol):
    """One Service over all servers (on different nodes): every backend answers."""
    servers = walk.service("servers")
    seen = walk.ask_every_backend(walk.client, walk.cluster_ip(servers, protocol), servers)
    walk.expect(seen)
