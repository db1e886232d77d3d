"""Session affinity: a Service with sessionAffinity ClientIP sends every request
of one client to the same backend.

kube-proxy pins the client's IP to the backend it first chose (iptables: the
`recent` match, for TCP and UDP alike). Each request is a new connection, so
without affinity two backends would both answer within a few requests.
"""

import pytest

REPEATS = 8  # without affinity, 8 more requests all reach the first backend 1 time in 256


@pytest.mark.hop("session_affinity")
def test_session_affinity(walk, protocol):
    service = walk.service("servers-affinity")
    to = walk.cluster_ip(service, protocol)
    # One request pins the client (Walk.pin: its attempts one at a time). The requests
    # after it make the run's attempts each.
    first, pinned = walk.pin(walk.client, to, "hostname", answer=service.backends)
    walk.expect(first)
    for _ in range(REPEATS):
        walk.expect(walk.ask(walk.client, to, "hostname", answer=pinned))
