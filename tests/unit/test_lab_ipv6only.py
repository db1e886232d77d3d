"""`lab up --ip-family ipv6` (docs/ipv6.md "IPv6-only lab"): a single-stack IPv6 cluster
on the dual lab's wires, bridge CNI. Pure, as test_lab_dual: commands are recorded,
never run, and no test gets past the lab's input checks to anything that touches this
machine. Built and unit-tested only: it has not been run on the lab.
"""

import json
import re
import shutil
import subprocess
from ipaddress import IPv6Network, ip_address, ip_network
from pathlib import Path

import pytest
import yaml

from packetwalk import aboutlab, cli, vantage
from packetwalk.lab import (
    cluster,
    components,
    faults,
    info,
    network,
    outside,
    paths,
    pki,
    preflight,
)
from packetwalk.lab import topology as t
from packetwalk.lab.cni import _policy, bridge, cni_named
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import Proc, State
from tests.unit.test_lab_dual import untouchable  # noqa: F401  (a fixture)
from tests.unit.test_lab_ipv4_unchanged import recorded  # noqa: F401  (a fixture)

NODES = t.nodes(2)
CP, WORKER = NODES[0], NODES[1]
SIX = "ipv6"
CIDRS = {"pw-control-plane": "10.244.0.0/24", "pw-worker": "10.244.1.0/24", "pw-worker2": "10.244.2.0/24"}
CIDRS6 = {"pw-control-plane": "fd10:0:0:4400::/64", "pw-worker": "fd10:0:0:4401::/64",
          "pw-worker2": "fd10:0:0:4402::/64"}
UPLINK6 = IPv6Network("fd00::/64")
DUAL_GOLDEN = json.loads((Path(__file__).parent / "lab_dual_golden.json").read_text())


def _changed(ipv4: list[str], other: list[str]) -> tuple[list[str], list[str]]:
    return [a for a in ipv4 if a not in other], [a for a in other if a not in ipv4]


# ---------------------------------------------------------------- the flag

def test_ipv6_passes_the_input_checks_on_bridge(untouchable):  # noqa: F811
    # Past the input checks, the first thing that would touch the machine refuses.
    with pytest.raises(AssertionError, match="went past its input checks"):
        cluster.up(ip_family=SIX, log=lambda m: None)
    assert components.check_ip_family(SIX) == SIX
    assert SIX in t.IP_FAMILIES and SIX in cni_named("bridge").ip_families


@pytest.mark.parametrize("other", ["flannel", "kube-router"])
def test_other_cnis_refuse_ipv6_in_one_line(untouchable, capsys, other):  # noqa: F811
    assert SIX not in cni_named(other).ip_families
    with pytest.raises(LabError, match=rf"^--ip-family ipv6: built for the bridge CNI only so far, "
                                       rf"not {other} \(docs/ipv6.md\)$"):
        cluster.up(cni=other, ip_family=SIX, log=lambda m: None)
    assert cli.main(["lab", "up", "--cni", other, "--ip-family", SIX]) == 1
    assert capsys.readouterr().err == (f"packetwalk: --ip-family ipv6: built for the bridge CNI only "
                                       f"so far, not {other} (docs/ipv6.md)\n")


def test_a_dual_lab_is_not_switched_to_ipv6_in_place():
    running = State(workers=2, cni="bridge", ip_family="dual", procs=[Proc("kubelet", "pw-worker", 1, 1, [])])
    with pytest.raises(LabError, match=r"runs with --ip-family dual; to switch to ipv6: `packetwalk lab "
                                       r"down`, then `packetwalk lab up --cni bridge --ip-family ipv6`"):
        cluster._refuse_switch(running, "bridge", "iptables", SIX)


def test_preflight_checks_ipv6_as_for_dual(tmp_path):
    with pytest.raises(LabError, match=r"^--ip-family ipv6: this kernel has no IPv6"):
        preflight.ip_family(SIX, tmp_path)
    conf = tmp_path / "sys/net/ipv6/conf/default"
    conf.mkdir(parents=True)
    (conf / "disable_ipv6").write_text("1\n")
    with pytest.raises(LabError, match=r"^--ip-family ipv6: IPv6 is disabled on new interfaces"):
        preflight.ip_family(SIX, tmp_path)
    (conf / "disable_ipv6").write_text("0\n")
    if all(shutil.which(x) for x in ("ip6tables", "ip6tables-save", "ip6tables-restore")):
        with pytest.raises(LabError, match=r"^--ip-family ipv6: missing kernel feature: br_netfilter"):
            preflight.ip_family(SIX, tmp_path)


# ---------------------------------------------------------------- the API server

def test_the_api_server_advertises_its_ipv6_and_serves_ipv6_services_only():
    assert _changed(components.kube_apiserver(CP), components.kube_apiserver(CP, family=SIX)) == (
        ["--advertise-address=10.250.0.10", "--bind-address=0.0.0.0",
         "--service-cluster-ip-range=10.96.0.0/16"],
        ["--advertise-address=fd10:0:0:2500::10", "--bind-address=::",
         "--service-cluster-ip-range=fd10:0:0:9600::/112"])
    with_admission = components.kube_apiserver(CP, "/x/a.yaml", SIX)
    assert with_admission[-1] == "--admission-control-config-file=/x/a.yaml"
    assert with_admission[:-1] == components.kube_apiserver(CP, family=SIX)


def test_the_kubeconfig_brackets_the_ipv6_api_server():
    assert components.api_server_url(SIX) == "https://[fd10:0:0:2500::10]:6443"
    assert components.api_server_url() == components.api_server_url("dual") == "https://10.250.0.10:6443"
    config = yaml.safe_load(pki.kubeconfig(components.api_server_url(SIX)))
    assert config["clusters"][0]["cluster"]["server"] == "https://[fd10:0:0:2500::10]:6443"


def test_the_certificate_names_the_ipv6_addresses_it_is_dialled_at():
    ipv4 = pki.apiserver_sans()
    assert pki.apiserver_sans("dual") == ipv4  # as before: a dual lab dials IPv4
    assert pki.apiserver_sans(SIX) == [*ipv4, "IP:fd10:0:0:2500::10", "IP:fd10:0:0:9600::1"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
def test_openssl_signs_the_ipv6_names(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PKI_DIR", tmp_path)
    pki.ensure(SIX)
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "apiserver.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    sans = re.findall(r"IP Address:([0-9A-Fa-f:.]+)", text)
    assert {ip_address(a) for a in sans} == {ip_address(a) for a in (
        "10.250.0.10", "10.96.0.1", "127.0.0.1", "fd10:0:0:2500::10", "fd10:0:0:9600::1")}


# ---------------------------------------------------------------- the other components

def test_the_controller_manager_hands_out_ipv6_64s_only():
    assert _changed(components.kube_controller_manager(), components.kube_controller_manager(SIX)) == (
        ["--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=24",
         "--service-cluster-ip-range=10.96.0.0/16"],
        ["--cluster-cidr=fd10:0:0:4400::/56", "--node-cidr-mask-size-ipv6=64",
         "--service-cluster-ip-range=fd10:0:0:9600::/112"])


def test_the_kubelet_has_one_ipv6_node_ip_and_ipv6_dns():
    assert _changed(components.kubelet(WORKER), components.kubelet(WORKER, SIX)) == (
        ["--node-ip=10.250.0.11"], ["--node-ip=fd10:0:0:2500::11"])
    assert "--node-ip=fd10:0:0:2500::10" in components.kubelet(CP, SIX)
    ipv4, six = components.kubelet_config(WORKER), components.kubelet_config(WORKER, SIX)
    assert yaml.safe_load(six)["address"] == "fd10:0:0:2500::11"
    assert yaml.safe_load(six)["clusterDNS"] == ["fd10:0:0:9600::a"]
    assert six == ipv4.replace("address: 10.250.0.11\n", "address: fd10:0:0:2500::11\n").replace(
        "clusterDNS: [10.96.0.10]\n", "clusterDNS: [fd10:0:0:9600::a]\n")
    assert "registerWithTaints" in components.kubelet_config(CP, SIX)


@pytest.mark.parametrize("mode", components.PROXY_MODES)
def test_kube_proxy_runs_ipv6_primary(mode):
    ipv4 = components.kube_proxy_config(WORKER, mode)
    six = components.kube_proxy_config(WORKER, mode, SIX)
    parsed = yaml.safe_load(six)
    assert parsed["clusterCIDR"] == "fd10:0:0:4400::/56"
    assert parsed["bindAddress"] == "fd10:0:0:2500::11"  # the primary family: IPv6
    assert parsed["mode"] == mode
    assert six == ipv4.replace("clusterCIDR: 10.244.0.0/16\n", "clusterCIDR: fd10:0:0:4400::/56\n").replace(
        f"mode: {mode}\n", f"bindAddress: fd10:0:0:2500::11\nmode: {mode}\n")


def test_the_dns_service_is_single_stack_ipv6():
    text = (paths.LAB_MANIFESTS / "coredns.yaml").read_text()
    six = list(yaml.safe_load_all(components.coredns_manifest(text, SIX)))
    service = next(d for d in six if d["kind"] == "Service" and d["metadata"]["name"] == "kube-dns")
    assert service["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert service["spec"]["ipFamilies"] == ["IPv6"]
    assert service["spec"]["clusterIP"] == "fd10:0:0:9600::a"
    assert service["spec"]["clusterIPs"] == ["fd10:0:0:9600::a"]
    for key in ("ipFamilyPolicy", "ipFamilies", "clusterIPs"):
        del service["spec"][key]
    service["spec"]["clusterIP"] = "10.96.0.10"
    assert six == list(yaml.safe_load_all(text))  # the rest as the IPv4 lab applies it
    with pytest.raises(LabError, match="expected one line .* to make it ipv6"):
        components.coredns_manifest("kind: Service\n", SIX)


def test_kube_router_polices_ipv6_alone():
    ipv4 = _policy.kube_router(WORKER)
    assert _changed(ipv4, _policy.kube_router(WORKER, SIX)) == (
        ["--enable-ipv4=true", "--enable-ipv6=false", "--service-cluster-ip-range=10.96.0.0/16"],
        ["--enable-ipv4=false", "--enable-ipv6=true", "--service-cluster-ip-range=fd10:0:0:9600::/112"])


def test_stopping_the_enforcer_clears_ip6tables_too(monkeypatch):
    restored, saved = [], []
    monkeypatch.setattr(_policy, "stop_component", lambda *a: None)
    monkeypatch.setattr(_policy, "run", lambda argv, what: saved.append(argv[-3]) or "*filter\nCOMMIT\n")
    monkeypatch.setattr(_policy.subprocess, "run", lambda argv, **kw: restored.append(argv[-2]))
    _policy.stop_enforcer(State(ip_family=SIX), WORKER)
    assert saved == ["iptables-save", "ip6tables-save"]
    assert restored == ["iptables-restore", "ip6tables-restore"]


def test_health_asks_aaaa_of_the_ipv6_dns_service():
    argv, want = cluster.dns_question(SIX)
    assert argv == ["dig", "+short", "+time=2", "+tries=1", "AAAA", "@fd10:0:0:9600::a",
                    "kubernetes.default.svc.cluster.local"]
    assert want == "fd10:0:0:9600::1"
    ipv4 = (["dig", "+short", "+time=2", "+tries=1", "@10.96.0.10", "kubernetes.default.svc.cluster.local"],
            "10.96.0.1")
    assert cluster.dns_question() == cluster.dns_question("dual") == ipv4  # as before


# ---------------------------------------------------------------- the bridge CNI

def test_the_conflist_has_one_ipv6_range_set_and_a_default_route():
    six = json.loads(bridge.conflist("fd10:0:0:4401::/64"))
    assert six["plugins"][0]["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "fd10:0:0:4401::/64"}]],
                                         "routes": [{"dst": "::/0"}]}
    ipv4 = json.loads(bridge.conflist("10.244.1.0/24"))
    del six["plugins"][0]["ipam"], ipv4["plugins"][0]["ipam"]
    assert six == ipv4
    # hairpin-off rewrites it from the node's one (IPv6) CIDR: no second range set.
    assert bridge.pod_cidr6_of(bridge.conflist("fd10:0:0:4401::/64", hairpin=False)) is None
    assert json.loads(bridge.conflist("fd10:0:0:4401::/64", hairpin=False))["plugins"][0]["hairpinMode"] is False


def test_the_nodes_route_each_others_64s_via_their_underlay_ipv6(monkeypatch):
    added = []
    monkeypatch.setattr(bridge, "ip", lambda *args, ns=None, check=True: added.append((ns, list(args))))
    bridge.CNI.after_cidrs(NODES, CIDRS6)
    assert added == [(r.ns, r.replace_args()) for r in bridge.pod_routes(NODES, CIDRS6, ipv6=True)]
    assert all(args[:3] == ["-6", "route", "replace"] and args[-2] == "via"
               and ip_address(args[-1]) in t.UNDERLAY6 for _, args in added)
    added.clear()
    bridge.CNI.cut_off(NODES, CIDRS6, WORKER)  # cross-node-route
    assert added == [("pw-control-plane", ["-6", "route", "del", "fd10:0:0:4401::/64"]),
                     ("pw-worker2", ["-6", "route", "del", "fd10:0:0:4401::/64"])]
    added.clear()
    bridge.CNI.cut_off(NODES, CIDRS, WORKER)  # an IPv4 lab's, as before
    assert added[0] == ("pw-control-plane", ["route", "del", "10.244.1.0/24"])


def test_ipv6_pod_cidrs_go_to_the_cni_as_the_nodes_pod_cidrs(monkeypatch):
    told = []

    class Recording:
        def configure_node(self, node, *cidrs):
            told.append(("configure_node", node.name, cidrs))

        def after_cidrs(self, nodes, *cidrs):
            told.append(("after_cidrs", len(nodes), cidrs))

    monkeypatch.setattr(cluster, "pod_cidrs", lambda: dict(CIDRS6))
    assert cluster._pod_networks(Recording(), NODES, SIX) == CIDRS6
    assert told == [*(("configure_node", n.name, (CIDRS6[n.name],)) for n in NODES),
                    ("after_cidrs", 3, (CIDRS6,))]
    monkeypatch.setattr(cluster, "pod_cidrs", lambda: {**CIDRS6, "pw-worker": "10.244.1.0/24"})
    with pytest.raises(LabError, match=r"^no IPv6 pod CIDR on pw-worker: the controller-manager gave IPv4"):
        cluster._pod_networks(Recording(), NODES, SIX)


# ---------------------------------------------------------------- the wires, lab.json, status

def test_the_wires_are_the_dual_labs(recorded):  # noqa: F811
    for build in (network.make_bridge, network.host_routes, network.make_outside):
        assert recorded(build, family=SIX) == recorded(build, family="dual"), build.__name__
    for n in NODES:
        assert recorded(network.make_node, n, family=SIX) == recorded(network.make_node, n, family="dual")
    assert outside.servers(SIX) == outside.servers("dual")


def test_lab_json_says_ipv6_only():
    told = info.describe(NODES, "bridge", SIX)
    data = json.loads(told.to_json())
    assert data["ip_families"] == ["ipv6"]
    assert data["underlay"] == "fd10:0:0:2500::/64"
    assert data["outside_host"] == data["outside_host6"] == "2001:db8:100::10"
    assert aboutlab.parse(told.to_json()) == told
    # The engine takes it for the lab: every node's InternalIP is in its underlay.
    assert vantage.is_lab(told, [str(n.ip6) for n in NODES], netns_present=True)
    assert not vantage.is_lab(told, [str(n.ip) for n in NODES], netns_present=True)


def test_status_says_ipv6_only():
    assert cluster.families_line(SIX) == [
        ("IP families: IPv6 only (pods in fd10:0:0:4400::/56, Services in fd10:0:0:9600::/112, "
        "API server https://[fd10:0:0:2500::10]:6443; the underlay keeps its IPv4, which no pod, "
        "Service or InternalIP uses)")]
    assert cluster.families_line("ipv4") == []


def test_faults_written_for_ipv4_are_refused_on_an_ipv6_lab(monkeypatch):
    for name in faults.IPV6_ONLY_FAULTS:
        faults.check_family(name, SIX)
        assert name in bridge.CNI.faults_supported
    for family in ("ipv4", "dual"):
        faults.check_family("egress-masquerade", family)
    monkeypatch.setattr(faults, "load", lambda: State(workers=2, cni="bridge", ip_family=SIX,
                                                      procs=[Proc("kubelet", "pw-worker", 1, 1, [])]))
    with pytest.raises(LabError, match=r"^fault egress-masquerade: not built for an IPv6-only lab yet; "
                                       r"it takes controller-manager-down, .* \(docs/ipv6.md\)$"):
        faults.inject("egress-masquerade")


# ---------------------------------------------------------------- safety

_V6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?")


def _ipv6_in(value) -> set[str]:
    """Every IPv6 address or prefix spelled in a generated argv, config or file."""
    text = json.dumps(value)
    found = set()
    for token in _V6.findall(text):
        try:
            net = ip_network(token, strict=False)
        except ValueError:
            continue
        if net.version == 6:
            found.add(token)
    return found


def _everything_ipv6_generates(record) -> dict:
    text = (paths.LAB_MANIFESTS / "coredns.yaml").read_text()
    return {
        "wires": [record(network.make_bridge, family=SIX), record(network.host_routes, family=SIX),
                  record(network.make_outside, family=SIX),
                  *(record(network.make_node, n, family=SIX) for n in NODES)],
        "argv": [components.kube_apiserver(CP, family=SIX), components.kube_controller_manager(SIX),
                 *(components.kubelet(n, SIX) for n in NODES),
                 *(_policy.kube_router(n, SIX) for n in NODES), cluster.dns_question(SIX)],
        "configs": [*(components.kubelet_config(n, SIX) for n in NODES),
                    *(components.kube_proxy_config(n, m, SIX) for n in NODES for m in components.PROXY_MODES),
                    components.coredns_manifest(text, SIX), bridge.conflist(CIDRS6["pw-worker"]),
                    pki.kubeconfig(components.api_server_url(SIX)), pki.apiserver_sans(SIX),
                    info.describe(NODES, "bridge", SIX).to_json(), cluster.families_line(SIX)],
        "routes": [r.replace_args() for r in bridge.pod_routes(NODES, CIDRS6, ipv6=True)],
    }


def test_every_ipv6_range_the_lab_uses_stays_in_its_two_prefixes(recorded):  # noqa: F811
    used = _ipv6_in(_everything_ipv6_generates(recorded))
    # The wildcards: the API server's bind address and the pods' default route.
    assert {u for u in used if ip_network(u, strict=False).prefixlen == 0 or u == "::"} == {"::", "::/0"}
    spelled = {ip_network(u, strict=False) for u in used} - {ip_network("::"), ip_network("::/0")}
    assert spelled >= {t.UNDERLAY6, t.POD_CIDR6, t.SERVICE_CIDR6, t.OUTSIDE6, t.ULA, t.DOCUMENTATION6,
                       ip_network("fd10:0:0:2500::10/128"), ip_network("fd10:0:0:9600::a/128"),
                       ip_network("fd10:0:0:4401::/64")}
    for net in spelled:
        assert net.subnet_of(t.ULA) or net.subnet_of(t.DOCUMENTATION6), net
        assert not net.overlaps(UPLINK6), net


def test_the_ipv6_lab_never_touches_the_host_outside_its_blackholes(recorded):  # noqa: F811
    calls = (recorded(network.make_bridge, family=SIX) + recorded(network.host_routes, family=SIX)
             + [[*(["ip", "-n", r.ns] if r.ns else ["ip"]), *r.replace_args()]
                for r in bridge.pod_routes(NODES, CIDRS6, ipv6=True)])
    host = [c for c in calls if c[0] != "nsenter" and c[:2] != ["ip", "-n"]]
    assert not any("forwarding" in a for c in host for a in c)
    for c in host:
        for a in _ipv6_in(c):
            net = ip_network(a, strict=False)
            assert net.subnet_of(t.ULA) or net.subnet_of(t.DOCUMENTATION6), c


# ---------------------------------------------------------------- ipv4 and dual unchanged

def test_the_dual_lab_is_what_it_was(recorded):  # noqa: F811
    """Every argv, config and file of a dual lab, against lab_dual_golden.json: generated
    by the code before IPv6-only existed (the IPv4 lab has test_lab_ipv4_unchanged)."""
    dual = "dual"
    now = {
        "make_bridge": recorded(network.make_bridge, family=dual),
        "host_routes": recorded(network.host_routes, family=dual),
        "make_outside": recorded(network.make_outside, family=dual),
        "make_node": {n.name: recorded(network.make_node, n, family=dual) for n in NODES},
        "masquerade6": recorded(network.masquerade_to_outside, "pw-worker", ipv6=True),
        "kube_apiserver": components.kube_apiserver(CP, family=dual),
        "kube_apiserver_admission": components.kube_apiserver(CP, "/x/a.yaml", family=dual),
        "kube_controller_manager": components.kube_controller_manager(dual),
        "kubelet": {n.name: components.kubelet(n, dual) for n in NODES},
        "kubelet_config": {n.name: components.kubelet_config(n, dual) for n in NODES},
        "kube_proxy_config": {m: components.kube_proxy_config(WORKER, m, dual) for m in components.PROXY_MODES},
        "kube_router": {n.name: _policy.kube_router(n, dual) for n in NODES},
        "conflist": bridge.conflist("10.244.1.0/24", pod_cidr6="fd10:0:0:4401::/64"),
        "conflist_nohairpin": bridge.conflist("10.244.1.0/24", hairpin=False, pod_cidr6="fd10:0:0:4401::/64"),
        "outside_servers": [list(s) for s in outside.servers(dual)],
        "lab_json": info.describe(NODES, "bridge", dual).to_json(),
        "coredns_yaml": components.coredns_manifest((paths.LAB_MANIFESTS / "coredns.yaml").read_text(), dual),
        "route_pod_cidrs": [[*(["-n", r.ns] if r.ns else []), *r.replace_args()] for r in bridge.pod_routes(NODES, CIDRS)],
        "route_pod_cidrs6": [[*(["-n", r.ns] if r.ns else []), *r.replace_args()]
                             for r in bridge.pod_routes(NODES, CIDRS6, ipv6=True)],
    }
    assert set(now) == set(DUAL_GOLDEN)
    for key, was in DUAL_GOLDEN.items():
        assert now[key] == was, key
