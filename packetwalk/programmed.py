"""Wait, once per run, until the run's Services answer: each node's proxy has them.

EndpointSlices that list every backend (workloads.await_endpoints) say the control
plane is done. The proxy on each node (kube-proxy, or the CNI in its place) then
programs the Service on its next sync, a second or more later on a busy node, and
a probe sent in between is refused. A run that starts probing at once meets that:
measured on the lab, a one-process run refused a NodePort in 19 ms, 0.3 s after its
pods were ready, on the node whose kube-proxy had not synced yet. A test's attempts
run at once, so they do not ride it out, and a network that is fine would read red.

No API says that a node's proxy has synced. So the client pod on each node asks,
over TCP, every ClusterIP of the run (its own node's proxy translates them) and
every cluster-wide NodePort at every node's address (each node's proxy serves its
own). A proxy programs a Service's ports together, so one port stands for the
rest. Each target is asked until it answers or the bound passes, all at once, in
one exec per client. A target that never answers is no error here: its tests probe
it and say why, and the run's notes name it.
"""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor

from packetwalk.inventory import Inventory, Pod, node_port_service_name
from packetwalk.probes import ExecFn, ProbeError

SERVICES_WAIT = 5.0  # seconds: the bound on the wait, from when the endpoints are listed
_PAUSE = 0.2  # seconds between two asks of a target that did not answer


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def targets(inventory: Inventory) -> list[str]:
    """The URLs every client asks (pure): each ClusterIP in each of its families, and
    each cluster-wide NodePort at each node's addresses; only Services whose `http`
    port the run's servers answer."""
    urls = []
    for service in inventory.services.values():
        if "http" in service.ports:
            urls += [_url(ip, service.ports["http"]) for ip in service.cluster_ips]
    names = {node_port_service_name(node) for node in inventory.nodes}
    for service in inventory.services.values():
        if service.name in names and "http" in service.node_ports:
            urls += [_url(ip, service.node_ports["http"])
                     for node in inventory.nodes for ip in (node.ips or (node.ip,))]
    return urls


def script(urls: list[str], bound: float) -> str:
    """bash that asks every URL at once, each until it answers or `bound` seconds have
    passed, and prints those that never answered, one a line."""
    return (f"end=$((SECONDS + {max(1, round(bound))}))\n"
            "ask() { until curl -s -o /dev/null --connect-timeout 1 --max-time 2 \"$1\"; do\n"
            "  ((SECONDS >= end)) && { echo \"$1\"; return; }\n"
            f"  sleep {_PAUSE}\n"
            "done; }\n"
            + "".join(f"ask {shlex.quote(url)} &\n" for url in urls)
            + "wait\n")


def _clients(inventory: Inventory) -> list[Pod]:
    """The ready client pod of each node; a node without one is not asked (its tests
    error and say why)."""
    return [pod for node in inventory.nodes
            if (pod := inventory.ready_on("client", node.name)) is not None]


def await_services(execs: ExecFn, inventory: Inventory, bound: float = SERVICES_WAIT) -> str:
    """Ask until every Service answers from every client, for at most `bound` seconds;
    the run's note: how long it took, or what did not answer."""
    urls, clients = targets(inventory), _clients(inventory)
    if not urls or not clients:
        return ""
    started = time.monotonic()
    command = ["bash", "-c", script(urls, bound)]

    def ask(pod: Pod) -> tuple[Pod, str]:
        try:
            result = execs(pod.source(), command, bound + 10)
        except ProbeError as exc:
            return pod, f"could not ask from {pod.name}: {exc}"
        silent = result.stdout.split()
        return pod, (f"from {pod.name}, no answer within {bound:g}s from {', '.join(silent)}"
                     if silent else "")

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        found = [why for _, why in pool.map(ask, clients) if why]
    took = time.monotonic() - started
    if found:
        return (f"Services not yet answering when the tests began ({'; '.join(found)}): "
                "their tests probe them and say why")
    return (f"Services answered from every node's client {took:.1f}s after their "
            f"endpoints were listed ({len(urls)} ClusterIPs and NodePorts)")
