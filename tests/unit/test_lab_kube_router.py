"""kube-router's full mode, kube-proxy's --proxy-mode and the agnhost image: the lab's pure parts."""

import json
import re
from pathlib import Path

import pytest

from packetwalk import cli
from packetwalk.lab import build, cluster, components, faults, images, paths, topology, versions
from packetwalk.lab.cni import cni_named, kube_router, names
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import Proc, State

WORKER = topology.nodes(2)[1]


def test_kube_router_is_a_cni():
    assert "kube-router" in names() and cni_named("kube-router") is kube_router.CNI
    assert kube_router.CNI.builds == ("kube-router",) and set(kube_router.CNI.builds) <= build.FOR_CNI


def test_it_runs_as_its_kubeadm_daemonset_runs_it():
    argv = kube_router.kube_router(WORKER)
    at = argv.index("/var/lib/packetwalk/bin/kube-router")
    assert argv[:at] == ["env", "NODE_NAME=pw-worker",
                         "KUBE_ROUTER_CNI_CONF_FILE=/etc/cni/net.d/10-kuberouter.conflist"]
    flags = argv[at + 1:]
    # daemonset/kubeadm-kuberouter.yaml's args: routing and policy, Services left to kube-proxy.
    assert flags[2:6] == ["--run-router=true", "--run-firewall=true", "--run-service-proxy=false",
                          "--bgp-graceful-restart=true"]
    assert "--hostname-override=pw-worker" in flags and "--metrics-port=8080" in flags
    # Full mesh iBGP among the nodes is kube-router's default: nothing names a peer.
    assert not [f for f in flags if "peer" in f or "nodes-full-mesh" in f or "enable-ibgp" in f]


def test_its_cni_config_is_the_configmaps_with_the_nodes_pod_cidr():
    conf = json.loads(kube_router.template("10.244.2.0/24"))
    assert (conf["cniVersion"], conf["name"]) == ("0.3.0", "mynet")
    bridge, portmap = conf["plugins"]
    assert bridge == {"name": "kubernetes", "type": "bridge", "bridge": "kube-bridge", "isDefaultGateway": True,
                      "hairpinMode": True,
                      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.2.0/24"}]]}}
    assert portmap["type"] == "portmap"


def test_hairpin_is_switched_in_the_conflist_kube_router_left():
    # kube-router adds the MTU (auto-mtu) and may add ranges; those stay.
    left = json.loads(kube_router.template("10.244.2.0/24"))
    left["plugins"][0]["mtu"] = 1500
    off = json.loads(kube_router.with_hairpin(json.dumps(left), False))
    assert off["plugins"][0]["hairpinMode"] is False and off["plugins"][0]["mtu"] == 1500
    assert off["plugins"][0]["ipam"] == left["plugins"][0]["ipam"]


def test_only_kube_routers_routes_count_as_learned():
    table = """default via 10.250.0.254 dev eth0
10.244.0.0/24 via 10.250.0.10 dev eth0 proto 17
10.244.1.0/24 dev kube-bridge proto kernel scope link src 10.244.1.1
10.244.2.0/24 via 10.250.0.12 dev eth0
10.244.3.0/24 via 10.250.0.13 dev eth0 proto zebra
10.250.0.0/24 dev eth0 proto kernel scope link src 10.250.0.11"""
    assert set(kube_router.learned_routes(table)) == {"10.244.0.0/24", "10.244.3.0/24"}


def test_kube_router_declares_its_faults_and_its_own():
    net = kube_router.CNI
    # The policy-ignores-* faults restart kube-router as the firewall-only enforcer
    # (cni/_policy.py): on this CNI that process is the router too.
    assert set(faults.FAULTS) - net.faults_supported == {
        "egress-masquerade", "policy-enforcer-down", "policy-ignores-except",
        "policy-ignores-named-ports", "cross-node-route-ipv6"}
    assert {f.name for f in net.own_faults} == {"bgp-down"} <= net.faults_supported
    assert set(net.fault_symptoms) <= net.faults_supported
    table = faults.faults_for(net)
    assert table["bgp-down"].per_node and "BGP" in table["bgp-down"].symptom
    assert set(table) == set(faults.FAULTS) | {"bgp-down"}
    assert faults.faults_for(cni_named("bridge")) == faults.FAULTS


def test_another_cni_is_still_refused_and_a_cni_fault_elsewhere_is_named(monkeypatch):
    monkeypatch.setattr(faults, "load", lambda: State(workers=2, cni="bridge", procs=[Proc("k", "n", 1, 1, [])]))
    with pytest.raises(LabError, match="^fault bgp-down does not apply to the bridge CNI$"):
        faults.inject("bgp-down")
    with pytest.raises(LabError, match="^unknown fault 'bgp-up'"):
        faults.inject("bgp-up")


# ---------------------------------------------------------------- --proxy-mode

def test_kube_proxy_config_carries_the_mode():
    assert "\nmode: iptables\n" in components.kube_proxy_config(WORKER)
    text = components.kube_proxy_config(WORKER, "nftables")
    assert "\nmode: nftables\n" in text
    # /proxyMode is served on the metrics address: what the facts read from the node.
    assert "metricsBindAddress: 127.0.0.1:10249" in text
    with pytest.raises(LabError, match="^unknown proxy mode 'ipvs'; known: iptables, nftables$"):
        components.kube_proxy_config(WORKER, "ipvs")


def test_an_unknown_proxy_mode_is_one_line_listing_the_choices(capsys):
    assert cli.main(["lab", "up", "--proxy-mode", "ipvs"]) == 1
    assert capsys.readouterr().err == "packetwalk: unknown proxy mode 'ipvs'; known: iptables, nftables\n"


def test_another_proxy_mode_than_the_running_one_is_refused_with_the_way_to_switch():
    running = State(workers=2, cni="kube-router", proxy_mode="nftables",
                    procs=[Proc("kubelet", "pw-worker", 1, 1, ["kubelet"])])
    with pytest.raises(LabError) as e:
        cluster._refuse_switch(running, "kube-router", "iptables")
    assert str(e.value) == ("the lab's kube-proxy runs in nftables mode; to switch to iptables: "
                            "`packetwalk lab down`, then `packetwalk lab up --cni kube-router "
                            "--proxy-mode iptables`")
    cluster._refuse_switch(running, "kube-router", "nftables")
    assert State().proxy_mode == "iptables"  # a state file from before the option


def test_kube_router_reports_its_version_in_its_metrics():
    c = next(c for c in build.COMPONENTS if c.name == "kube-router")
    assert f"pkg/version.Version={versions.KUBE_ROUTER}" in c.flags
    # The flags are in the stamp: an existing binary without the version is rebuilt.
    assert c.stamp() != build.Component(c.name, c.version, c.outputs, c.build).stamp()
    # Components without flags keep the stamp they had.
    etcd = next(c for c in build.COMPONENTS if c.name == "etcd")
    assert etcd.flags == ""


# ---------------------------------------------------------------- agnhost

DOCKERFILE = paths.GOMODCACHE / f"k8s.io/kubernetes@{versions.KUBERNETES}/test/images/agnhost/Dockerfile"
# What upstream's image has that the lab's leaves out, and why.
LEFT_OUT = {
    "/var/registry": "fake-registry-server's images, copied from a registry at build time: the lab has none",
    "/coredns.tgz": "a CoreDNS 1.6.2 download from GitHub, unpacked and deleted; the lab has its own CoreDNS",
}


def upstream_adds(text: str) -> dict[str, set]:
    """Paths, links, users and groups the main stage of agnhost's Dockerfile adds."""
    main = text.split("AS main", 1)[1]
    found: dict[str, set] = {"paths": set(), "links": set(), "users": set(), "groups": set()}
    for dest in re.findall(r"^(?:ADD|COPY)\s+(?:--\S+\s+)?\S+\s+(\S+)\s*$", main, re.MULTILINE):
        found["paths"].add("/" + dest.lstrip("/"))
    found["paths"] |= set(re.findall(r"\bmkdir (/\S+)", main))
    found["links"] |= {"/" + link for link in re.findall(r"\bln -s agnhost (\S+)", main)}
    found["users"] |= {(name, int(uid)) for uid, name in re.findall(r"adduser -u (\d+) -D (\S+)", main)}
    found["groups"] |= {(name, int(gid)) for gid, name in re.findall(r"addgroup -g (\d+) (\S+)", main)}
    return found


def agnhost_plan(tmp_path: Path) -> images._Plan:
    plan = images._Plan(merged=True)
    plan.add_file("/agnhost", tmp_path / "agnhost")
    plan.texts["etc/passwd"], plan.texts["etc/group"] = images._TOOLS_PASSWD, images._TOOLS_GROUP
    images.add_agnhost_extras(plan, {n: tmp_path / n for n in images.PORTER_TLS})
    return plan


@pytest.mark.skipif(not DOCKERFILE.is_file(), reason="k8s.io/kubernetes is not in the Go module cache")
def test_the_agnhost_image_has_what_upstreams_dockerfile_adds(tmp_path):
    upstream = upstream_adds(DOCKERFILE.read_text())
    assert {"/localhost.crt", "/localhost.key", "/agnhost", "/uploads"} <= upstream["paths"]
    plan = agnhost_plan(tmp_path)
    have = {"/" + p for p in (*plan.files, *plan.dirs, *plan.links)}
    assert upstream["paths"] - set(LEFT_OUT) <= have, upstream["paths"] - have
    assert upstream["links"] <= have and plan.links["agnhost-2"] == "agnhost"
    passwd = {(line.split(":")[0], int(line.split(":")[2])) for line in plan.texts["etc/passwd"].splitlines()}
    groups = {(line.split(":")[0], int(line.split(":")[2])): line.split(":")[3]
              for line in plan.texts["etc/group"].splitlines()}
    assert upstream["users"] <= passwd and upstream["groups"] <= set(groups)
    assert groups[("group-defined-in-image", 50000)] == "user-defined-in-image"  # addgroup USER GROUP


def test_only_the_agnhost_image_gets_them():
    assert [s.agnhost for s in images.IMAGES] == [False, False, True]
    assert any(t.name == "nft" for t in images.TOOLS)  # the capture reads nftables-mode rules


@pytest.mark.skipif(not images.shutil.which("openssl"), reason="openssl not installed")
def test_porters_tls_pair_is_made_once_for_localhost(tmp_path):
    made = images.porter_tls(tmp_path)
    assert set(made) == {"localhost.crt", "localhost.key"}
    first = {n: p.read_bytes() for n, p in made.items()}
    assert images.porter_tls(tmp_path)["localhost.key"].read_bytes() == first["localhost.key"]
    assert made["localhost.key"].stat().st_mode & 0o044 == 0o044  # the suite's pods run as 65534
    text = images.subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(made["localhost.crt"])],
                                 capture_output=True, text=True, check=True).stdout
    assert "CN = localhost" in text and "DNS:localhost" in text and "IP Address:127.0.0.1" in text


@pytest.mark.skipif(not images.shutil.which("openssl"), reason="openssl not installed")
def test_the_tls_pair_changes_the_agnhost_stamp_and_only_it(tmp_path):
    """An image built before this change is rebuilt: its stamp's inputs differ."""
    spec = images.IMAGES[2]
    before = images._Plan(merged=True)
    before.add_file("/agnhost", Path("/bin/sh"))
    after = images._Plan(merged=True, files=dict(before.files), texts={"etc/passwd": "", "etc/group": ""})
    before.texts.update({"etc/passwd": "", "etc/group": ""})
    images.add_agnhost_extras(after, images.porter_tls(tmp_path))
    assert images._stamp(spec, before) != images._stamp(spec, after)
