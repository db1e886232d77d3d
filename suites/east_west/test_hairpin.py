"""Hairpin: a pod reaches itself through its own Service.

The packet leaves the pod, is DNATed back to the same pod and must come back
through the same bridge port: that needs hairpin mode (or masquerade).
"""

import pytest


@pytest.mark.hop("hairpin")
def test_hairpin(walk, protocol):
    server = walk.server
    seen = walk.ask(server, walk.cluster_ip(walk.server_service, protocol), "hostname",
                    answer=server.name)
    walk.expect(seen)
