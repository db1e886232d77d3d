"""Source IP: the server sees the client's pod IP, directly and through a ClusterIP.

Inside the cluster nothing should SNAT pod-to-pod traffic; a node IP here
means a masquerade rule catches traffic it should not.
"""

import pytest


@pytest.mark.hop("source_ip_pod_ip")
def test_source_ip_via_pod_ip(walk, protocol):
    client = walk.client
    seen = walk.ask(client, walk.pod_ip(walk.server, protocol), "clientip", source_ip=walk.address(client))
    walk.expect(seen)


@pytest.mark.hop("source_ip_cluster_ip")
def test_source_ip_via_cluster_ip(walk, protocol):
    client = walk.client
    seen = walk.ask(client, walk.cluster_ip(walk.server_service, protocol), "clientip",
                    source_ip=walk.address(client))
    walk.expect(seen)
