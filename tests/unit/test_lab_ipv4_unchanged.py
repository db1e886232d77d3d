"""`lab up` without --ip-family is the IPv4 lab as it was before dual-stack existed:
every argv, config, route and file the lab generates, compared with what the lab
generated before (lab_ipv4_golden.json, written from the commit before the change).

Nothing here runs a command: the network's `run` records argv instead, and its
existence checks answer yes (the lab's links exist), so the calls are those of a
lab brought up again over itself.
"""

import json
from pathlib import Path

import pytest

from packetwalk.lab import components, info, network, outside, paths
from packetwalk.lab import topology as t
from packetwalk.lab.cni import _policy, bridge

GOLDEN = json.loads((Path(__file__).parent / "lab_ipv4_golden.json").read_text())
NODES = t.nodes(2)
CIDRS = {"pw-control-plane": "10.244.0.0/24", "pw-worker": "10.244.1.0/24", "pw-worker2": "10.244.2.0/24"}


class _Present:
    """Path stand-in: every link and namespace the lab makes already exists."""

    def __init__(self, *_parts: object) -> None:
        pass

    def exists(self) -> bool:
        return True

    def iterdir(self):
        return iter(())


@pytest.fixture
def recorded(monkeypatch):
    calls: list[list[str]] = []

    def fake_run(argv, what, timeout=None, check=True):
        calls.append(list(argv))
        return ""

    monkeypatch.setattr(network, "run", fake_run)
    monkeypatch.setattr(network, "exists", lambda name: True)
    monkeypatch.setattr(network, "Path", _Present)

    def record(fn, *args, **kwargs):
        calls.clear()
        fn(*args, **kwargs)
        return [list(c) for c in calls]
    return record


def _only(servers: list[tuple[str, list[str]]]) -> list[str]:
    """The outside host's one server's argv (an IPv4 lab runs one)."""
    assert [name for name, _ in servers] == [outside.PROC_NAME]
    return servers[0][1]


def generated(record, **family) -> dict:
    """What the lab generates, each builder called with `family` (none: its default)."""
    return {
        "make_bridge": record(network.make_bridge, **family),
        "host_routes": record(network.host_routes, **family),
        "make_outside": record(network.make_outside, **family),
        "make_node": {n.name: record(network.make_node, n, **family) for n in NODES},
        "masquerade": record(network.masquerade_to_outside, "pw-worker"),
        "etcd": components.etcd(NODES[0]),
        "kube_apiserver": components.kube_apiserver(NODES[0], **family),
        "kube_apiserver_admission": components.kube_apiserver(NODES[0], "/x/a.yaml", **family),
        "kube_controller_manager": components.kube_controller_manager(**family),
        "kube_scheduler": components.kube_scheduler(),
        "kubelet": {n.name: components.kubelet(n, **family) for n in NODES},
        "kubelet_config": {n.name: components.kubelet_config(n) for n in NODES},
        "kube_proxy": {n.name: components.kube_proxy(n) for n in NODES},
        "kube_proxy_config": {m: components.kube_proxy_config(NODES[1], m, **family)
                              for m in components.PROXY_MODES},
        "containerd_config": components.containerd_config(NODES[1]),
        "kube_router": {n.name: _policy.kube_router(n, **family) for n in NODES},
        "conflist": bridge.conflist("10.244.1.0/24"),
        "conflist_nohairpin": bridge.conflist("10.244.1.0/24", hairpin=False),
        "outside_server": _only(outside.servers(**family)),
        "lab_json": info.describe(NODES, "bridge", **family).to_json(),
        "coredns_yaml": components.coredns_manifest(
            (paths.LAB_MANIFESTS / "coredns.yaml").read_text(), **family),
        "route_pod_cidrs": [[*(["-n", r.ns] if r.ns else []), *r.replace_args()]
                            for r in bridge.pod_routes(NODES, CIDRS)],
    }


@pytest.mark.parametrize("family", [{}, {"family": "ipv4"}], ids=["no-flag", "ipv4"])
def test_the_ipv4_lab_is_what_it_was(recorded, family):
    now = generated(recorded, **family)
    assert set(now) == set(GOLDEN)
    for key, was in GOLDEN.items():
        assert now[key] == was, key
