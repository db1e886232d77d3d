"""Which pods a failed probe's traffic reaches, and on which of their ports. Pure.

NetworkPolicies see traffic after a Service's DNAT, so a Service is replaced by
its backends and the Service port by the backend's port. A probe by name first
asks the cluster DNS, whose pods are not the run's: that is said apart (`dns`),
and policies.py finds those pods behind the DNS Service.
"""

from __future__ import annotations

from dataclasses import dataclass

from packetwalk.diagnose.narrowing import NODE_PORT, Attempt, dialed
from packetwalk.inventory import PORT_NAMES, Inventory, Pod

DNS_PORT = 53


@dataclass(frozen=True)
class Touched:
    """`servers`: (pod, port, protocol) the traffic ends at. `dns`: the protocol the
    lookup went over when the probe asked the cluster DNS, else None."""

    servers: tuple[tuple[Pod, int, str], ...]
    dns: str | None


def touched(attempt: Attempt, inventory: Inventory) -> Touched:
    to = attempt.to
    # The suite dials the DNS Service's IP only to look a name up (on port 53).
    lookup = to.ip == inventory.dns_ip or (to.port == DNS_PORT and attempt.name is not None)
    if lookup:
        return Touched((), to.protocol)  # nothing is dialed after the lookup
    # A name is resolved first, over UDP (probes.Prober.request), then dialed.
    dns = "udp" if attempt.name is not None else None
    target = dialed(attempt, inventory)
    if target.pod is not None:
        return Touched(((target.pod, to.port, to.protocol),), dns)
    service = target.service
    if service is None:
        return Touched((), dns)
    numbers = service.node_ports if target.kind == NODE_PORT else service.ports
    name = next((n for n, number in numbers.items() if number == to.port),
                PORT_NAMES.get(to.protocol, ""))
    backends = [inventory.pods[n] for n in service.backends if n in inventory.pods]
    return Touched(tuple((pod, _backend_port(pod, name, to.protocol, service.ports.get(name, to.port)),
                          to.protocol) for pod in backends), dns)


def _backend_port(pod: Pod, name: str, protocol: str, service_port: int) -> int:
    """The http and udp ports are the pod's own (Pod.target); another port (the
    policy server's alt) is exposed on its target port (manifests/service-*.yaml)."""
    if name in PORT_NAMES.values():
        return pod.target(protocol).port
    return service_port
