"""The lab's CNI slot: the bridge CNI does exactly what the lab did before the slot."""

import json

import pytest

from packetwalk.lab import build, faults, topology
from packetwalk.lab.cni import DEFAULT_CNI, _policy, bridge, cni_named, names
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import State

# The conflist the lab wrote before the CNI slot, byte for byte.
CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "packetwalk",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
         "hairpinMode": True, "mtu": 1500,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def test_bridge_conflist_is_unchanged():
    assert bridge.conflist("10.244.1.0/24") == json.dumps(CONFLIST, indent=1)
    off = json.loads(bridge.conflist("10.244.1.0/24", hairpin=False))
    assert off["plugins"][0]["hairpinMode"] is False


def test_kube_router_runs_firewall_only():
    argv = _policy.kube_router(topology.nodes(2)[1])
    assert argv[1:] == [
        "--kubeconfig=/var/lib/packetwalk/kubeconfig", "--hostname-override=pw-worker",
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        "--enable-ipv4=true", "--enable-ipv6=false", "--service-cluster-ip-range=10.96.0.0/16",
        "--health-port=20244", "--v=1"]
    assert argv[0].endswith("/bin/kube-router")


def test_cnis_are_found_by_name():
    assert DEFAULT_CNI == "bridge" and "bridge" in names()
    assert cni_named("bridge") is bridge.CNI and bridge.CNI.name == "bridge"
    with pytest.raises(LabError, match="unknown CNI 'nope'; known: bridge"):
        cni_named("nope")


def test_bridge_supports_every_fault_and_builds_what_it_names():
    assert bridge.CNI.faults_supported == set(faults.FAULTS)
    known = {c.name for c in build.COMPONENTS}
    for name in names():
        assert set(cni_named(name).builds) <= build.FOR_CNI <= known


def test_a_state_without_a_cni_is_the_bridge_lab():
    assert State().cni == "bridge"


def test_fault_list_says_which_cnis_each_fault_applies_to(monkeypatch):
    monkeypatch.setattr(faults, "load", lambda: State())
    lines = faults.catalogue().splitlines()
    assert lines[0].startswith("the lab is down")
    masq = next(line for line in lines if line.startswith("egress-masquerade "))
    # flannel and kube-router masquerade themselves; cilium leaves it to the lab's PW-MASQ
    assert masq.endswith("[bridge, cilium]")
    bgp = next(line for line in lines if line.startswith("bgp-down "))
    assert bgp.endswith("[kube-router]") and "--node" in bgp
