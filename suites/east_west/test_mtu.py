"""Path MTU: packets filled to the pod MTU cross intact (TCP segments, a UDP datagram).

Small requests pass but this fails: the path between nodes carries less than
the pod MTU (encapsulation overhead) and frag-needed never reaches the sender.
"""

import pytest


@pytest.mark.hop("mtu")
def test_mtu(walk, protocol):
    seen = walk.echo_near_mtu(walk.client, walk.pod_ip(walk.server, protocol))
    walk.expect(seen)
