"""The flannel CNI's pure parts: what flanneld is told, and the pod network built from its subnet.env."""

import json

import pytest

from packetwalk import cli
from packetwalk.lab import build, cluster, faults, topology, versions
from packetwalk.lab.cni import cni_named, flannel, names
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import Proc, State

SUBNET_ENV = """FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.2.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""
# What flanneld v0.28.4 writes with EnableIPv6 (pkg/subnet/subnet.go WriteSubnetFile).
SUBNET_ENV_DUAL = SUBNET_ENV.replace("FLANNEL_MTU", "FLANNEL_IPV6_NETWORK=fd10:0:0:4400::/56\n"
                                     "FLANNEL_IPV6_SUBNET=fd10:0:0:4402::1/64\nFLANNEL_MTU")
WORKER = topology.nodes(2)[1]


def test_flannel_is_a_cni_and_the_shared_module_is_not():
    assert {"bridge", "flannel"} <= set(names()) and "-policy" not in names()
    assert cni_named("flannel") is flannel.CNI and flannel.CNI.name == "flannel"


def test_net_conf_is_the_daemonsets_for_the_lab_pod_cidr():
    assert json.loads(flannel.net_conf()) == {
        "Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": {"Type": "vxlan"}}


def test_flanneld_runs_as_the_daemonset_runs_it():
    argv = flannel.flanneld(WORKER)
    at = argv.index("/var/lib/packetwalk/bin/flanneld")
    assert argv[:at] == ["env", "NODE_NAME=pw-worker", "POD_NAMESPACE=kube-flannel",
                         "EVENT_QUEUE_DEPTH=5000", "CONT_WHEN_CACHE_NOT_READY=false"]
    assert argv[at + 1:] == [
        "--ip-masq", "--kube-subnet-mgr", "--kubeconfig-file=/var/lib/packetwalk/kubeconfig",
        "--iface=eth0", "--net-config-path=/etc/kube-flannel/net-conf.json"]
    assert flannel.env(WORKER)["NODE_NAME"] == "pw-worker"


def test_subnet_env_is_parsed():
    env = flannel.parse_subnet_env(SUBNET_ENV)
    assert (str(env.network), str(env.subnet), env.mtu, env.ipmasq) == (
        "10.244.0.0/16", "10.244.2.1/24", 1450, True)
    # Blank lines, comments and keys flannel adds for IPv6 are no trouble.
    assert flannel.parse_subnet_env("# x\n\n" + SUBNET_ENV + "FLANNEL_IPV6_MTU=1430\n") == env


@pytest.mark.parametrize(("text", "says"), [
    ("", "/run/flannel/subnet.env lacks FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"),
    (SUBNET_ENV.replace("FLANNEL_MTU=1450\n", ""), "lacks FLANNEL_MTU$"),
    (SUBNET_ENV.replace("1450", "big"), "has a bad value: invalid literal for int"),
    (SUBNET_ENV.replace("10.244.2.1/24", "10.244.2.1/99"), "has a bad value"),
    (SUBNET_ENV.replace("IPMASQ=true", "IPMASQ=yes"), "FLANNEL_IPMASQ 'yes' is neither true nor false"),
    (SUBNET_ENV.replace("10.244.2.1/24", "10.9.0.1/24"), "subnet 10.9.0.1/24 outside 10.244.0.0/16"),
    (SUBNET_ENV.replace("1450", "68"), "MTU 68 too small"),
    # A dual-stack lab's IPv6 keys.
    (SUBNET_ENV_DUAL.replace("FLANNEL_IPV6_NETWORK=fd10:0:0:4400::/56\n", ""),
     "has FLANNEL_IPV6_SUBNET without the other IPv6 key"),
    (SUBNET_ENV_DUAL.replace("fd10:0:0:4402::1/64", "fd99::1/64"), "IPv6 subnet fd99::1/64 outside"),
    (SUBNET_ENV_DUAL.replace("fd10:0:0:4402::1/64", "10.1.1.1/24"), "has a bad value"),
])
def test_a_bad_subnet_env_is_one_clear_error(text, says):
    with pytest.raises(LabError, match=says):
        flannel.parse_subnet_env(text)


def test_the_error_names_the_node_file():
    with pytest.raises(LabError, match=r"^/run/flannel/subnet.env of pw-worker lacks"):
        flannel.parse_subnet_env("FLANNEL_MTU=1450", "/run/flannel/subnet.env of pw-worker")


def test_conflist_delegates_to_bridge_from_subnet_env():
    conf = json.loads(flannel.conflist(flannel.parse_subnet_env(SUBNET_ENV)))
    assert conf["name"] == "cbr0" and conf["cniVersion"] == "1.0.0"
    bridge, portmap = conf["plugins"]
    assert bridge == {
        "type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
        "ipMasq": False, "hairpinMode": True, "mtu": 1450,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.2.0/24"}]],
                 "routes": [{"dst": "10.244.0.0/16"}]}}
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}


def test_conflist_masquerades_only_when_flanneld_does_not_and_follows_hairpin():
    no_masq = flannel.parse_subnet_env(SUBNET_ENV.replace("IPMASQ=true", "IPMASQ=false"))
    assert json.loads(flannel.conflist(no_masq))["plugins"][0]["ipMasq"] is True
    off = json.loads(flannel.conflist(no_masq, hairpin=False))
    assert off["plugins"][0]["hairpinMode"] is False


def test_a_dual_stack_lab_tells_flanneld_both_networks():
    assert json.loads(flannel.lab_net_conf("dual")) == {
        "Network": "10.244.0.0/16", "EnableNFTables": False, "EnableIPv6": True,
        "IPv6Network": "fd10:0:0:4400::/56", "Backend": {"Type": "vxlan"}}
    assert flannel.lab_net_conf("ipv4") == flannel.net_conf()
    assert json.loads(flannel.lab_net_conf("dual", 8473))["Backend"] == {"Type": "vxlan", "Port": 8473}
    assert flannel.CNI.ip_families == ("ipv4", "dual")


def test_a_dual_stack_subnet_env_gives_the_pods_both_families():
    env = flannel.parse_subnet_env(SUBNET_ENV_DUAL)
    assert (str(env.network6), str(env.subnet6)) == ("fd10:0:0:4400::/56", "fd10:0:0:4402::1/64")
    ipam = json.loads(flannel.conflist(env))["plugins"][0]["ipam"]
    assert ipam == {"type": "host-local",
                    "ranges": [[{"subnet": "10.244.2.0/24"}], [{"subnet": "fd10:0:0:4402::/64"}]],
                    "routes": [{"dst": "10.244.0.0/16"}, {"dst": "fd10:0:0:4400::/56"}]}
    assert flannel.parse_subnet_env(SUBNET_ENV).subnet6 is None


def test_the_cut_drops_one_familys_tunnel():
    assert flannel._vxlan_drop("-I") == ["iptables", "-w", "-t", "raw", "-I", "PREROUTING", "-i", "eth0",
                                         "-p", "udp", "--dport", "8472", "-j", "DROP"]
    assert flannel._vxlan_drop("-D", "ipv6")[:6] == ["ip6tables", "-w", "-t", "raw", "-D", "PREROUTING"]


def test_pod_mtu_is_the_node_link_less_vxlan():
    assert flannel.VXLAN_OVERHEAD == 50 and flannel.VXLAN_PORT == 8472


def test_flannel_builds_from_the_pinned_upstream():
    c = next(c for c in build.COMPONENTS if c.name == "flannel")
    assert (c.version, c.outputs) == (versions.FLANNEL, ("flanneld",)) == ("v0.28.4", ("flanneld",))
    assert versions.FLANNEL_UPGRADE == "v0.28.10"
    assert set(flannel.CNI.builds) == {"flannel", "kube-router"} <= build.FOR_CNI


def test_flannel_declares_the_faults_that_hold_on_it():
    own = {f.name for f in flannel.CNI.own_faults}
    assert own == {"flanneld-down"} and own <= flannel.CNI.faults_supported
    assert flannel.CNI.faults_supported - own < set(faults.FAULTS)
    assert set(faults.FAULTS) - flannel.CNI.faults_supported == {"egress-masquerade", "mtu-mismatch"}
    assert "VXLAN" in flannel.CNI.fault_symptoms["cross-node-route"]
    assert set(flannel.CNI.fault_symptoms) <= flannel.CNI.faults_supported


def _running(cni: str) -> State:
    return State(workers=2, cni=cni, procs=[Proc("kubelet", "pw-worker", 1, 1, ["kubelet"])])


def test_another_cni_than_the_running_one_is_refused_with_the_way_to_switch():
    with pytest.raises(LabError) as e:
        cluster._refuse_switch(_running("bridge"), "flannel")
    assert str(e.value) == ("the lab runs the bridge CNI; to switch to flannel: `packetwalk lab down`, "
                            "then `packetwalk lab up --cni flannel`")
    cluster._refuse_switch(_running("flannel"), "flannel")
    cluster._refuse_switch(State(cni="bridge"), "flannel")  # nothing runs: nothing to switch


def test_status_names_the_cni_and_its_versions(monkeypatch):
    # The pinned versions: not what this machine's lab state may say after an upgrade.
    monkeypatch.setattr("packetwalk.lab.state.load", lambda: State(cni="flannel"))
    assert cluster.cni_line("flannel") == "CNI: flannel (flanneld v0.28.4, kube-router v2.1.0)"
    assert cluster.cni_line("bridge") == "CNI: bridge (kube-router v2.1.0)"


def test_an_unknown_cni_is_one_line_listing_the_choices(capsys):
    assert cli.main(["lab", "up", "--cni", "calico"]) == 1
    err = capsys.readouterr().err
    assert err == f"packetwalk: unknown CNI 'calico'; known: {', '.join(names())}\n"
    assert "bridge" in err and "flannel" in err


def test_the_upgrade_target_builds_beside_the_pinned_flanneld():
    pinned, target = build.flannel_at(versions.FLANNEL), build.flannel_at(versions.FLANNEL_UPGRADE)
    assert pinned.outputs == ("flanneld",) and pinned in build.COMPONENTS
    assert target.outputs == ("flanneld-v0.28.10",) and target.name == "flannel-v0.28.10"
    assert target.build is pinned.build and target.stamp() != pinned.stamp()
    assert flannel.binary(versions.FLANNEL_UPGRADE) == "flanneld-v0.28.10"
    assert "/var/lib/packetwalk/bin/flanneld-v0.28.10" in flannel.flanneld(WORKER, versions.FLANNEL_UPGRADE)
    assert flannel.CNI.upgrades == ("v0.28.4", "v0.28.10")


def test_a_changed_vxlan_port_is_in_net_conf_and_the_default_is_left_out():
    assert "Port" not in json.loads(flannel.net_conf())["Backend"]
    assert json.loads(flannel.net_conf(vxlan_port=8473))["Backend"] == {"Type": "vxlan", "Port": 8473}


@pytest.mark.parametrize(("spec", "port", "says"), [
    ("flannel", None, "NAME@VERSION, e.g. flannel@v0.28.10"),
    ("calico@v3", None, "unknown CNI 'calico'"),
    ("bridge@v1", None, "the lab offers no upgrade of bridge; it offers: flannel@v0.28.4 / v0.28.10"),
    ("flannel@v0.99.0", None, "flannel v0.99.0 is not offered; choices: v0.28.4, v0.28.10"),
    ("flannel@v0.28.10", 80, "--vxlan-port 80: a port in 1024-65535"),
])
def test_a_bad_upgrade_is_one_line_before_anything_is_touched(spec, port, says, capsys):
    argv = ["lab", "upgrade", "--cni", spec] + (["--vxlan-port", str(port)] if port else [])
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("packetwalk: ") and says in err and err.count("\n") == 1, err
