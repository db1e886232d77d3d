"""`packetwalk lab restart COMPONENT --node N`: a node agent restarted as its
DaemonSet would on an upgrade or a kubelet eviction, the same binary and flags.

What a watch (`--during`) measures against: the restart is journalled beside the
faults (journal.read(): "stopped", then "started" once the agent works again),
and unlike a fault it removes nothing. kube-proxy stopped leaves its rules in the
kernel, a policy agent its chains, flanneld its VXLAN device: a graceful restart
should cost no traffic, and a watch shows whether it did.
"""

from __future__ import annotations

import subprocess

from . import cluster, journal
from . import topology as t
from .errors import LabError
from .faults import _node
from .processes import alive, in_netns, start, stop_component
from .state import load

# Node agents whose recorded argv restarts them as they were: kube-proxy, and the
# CNI's agents (kube-router for policy or as the CNI, flanneld), each with the health
# endpoint that says it works again (kube-proxy: once it has synced its rules;
# flanneld serves none here: its process staying up is all there is to wait for).
HEALTH = {"kube-proxy": 10256, "kube-router": 20244, "flanneld": None}
RESTARTABLE = tuple(HEALTH)
READY_TIMEOUT = 30.0  # seconds an agent may take to work again after its start


def _working(component: str, node: t.Node):
    """When the restarted agent counts as working again: its process up and its
    health endpoint answering 200 in the node's network namespace."""
    def probe() -> bool:
        state = load()
        procs = [p for p in state.procs if p.name == component and p.node == node.name]
        if not procs or not all(alive(p) for p in procs):
            return False
        port = HEALTH[component]
        return port is None or _healthy(node.name, port)
    return probe


def _healthy(node: str, port: int) -> bool:
    done = subprocess.run(in_netns(node) + ["curl", "-sf", "-o", "/dev/null", "--max-time", "1",
                                            f"http://127.0.0.1:{port}/healthz"],
                          capture_output=True, check=False, timeout=5)
    return done.returncode == 0


def restart(component: str, node: str | None = None) -> str:
    state = load()
    if not state.procs:
        raise LabError("the lab is down: run `packetwalk lab up` first")
    if component not in RESTARTABLE:
        raise LabError(f"cannot restart {component!r}: one of {', '.join(RESTARTABLE)}")
    target = _node(state, node)
    procs = [p for p in state.procs if p.name == component and p.node == target.name]
    if not procs:
        running = sorted({p.name for p in state.procs if p.node == target.name} & set(RESTARTABLE))
        raise LabError(f"no {component} runs on {target.name} (the {state.cni} lab runs "
                       f"{', '.join(running) or 'none of them'} there)")
    argv = procs[0].argv
    stop_component(state, component, target.name)
    journal.record("stopped", component, target.name)
    start(load(), target.name, component, argv)
    cluster.wait_for(f"{component} on {target.name} to work again", _working(component, target),
                     READY_TIMEOUT, 0.2)
    journal.record("started", component, target.name)
    return f"{component} restarted on {target.name}"
