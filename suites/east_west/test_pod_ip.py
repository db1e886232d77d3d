"""Pod network: client -> server by pod IP. No Service, no DNS, no NAT.

If this fails, nothing above it can work: look at the CNI (bridge, veth,
routes between nodes). Cross-node failing alone points between nodes.
"""

import pytest


@pytest.mark.hop("pod_ip")
def test_pod_ip(walk, protocol):
    server = walk.server
    seen = walk.ask(walk.client, walk.pod_ip(server, protocol), "hostname", answer=server.name)
    walk.expect(seen)
