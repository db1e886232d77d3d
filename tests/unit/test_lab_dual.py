"""`lab up --ip-family dual` (issue 17, docs/ipv6.md "The lab side"): what it adds to
the IPv4 lab, and nothing else. Pure: the network's commands are recorded, never run
(the `recorded` fixture of test_lab_ipv4_unchanged), and no test gets past the lab's
input checks to anything that touches this machine.
"""

import http.client
import json
import socket
import threading
from ipaddress import ip_address, ip_network

import pytest
import yaml

from packetwalk import aboutlab, cli
from packetwalk.lab import cluster, components, info, network, outside, paths, preflight, state
from packetwalk.lab import topology as t
from packetwalk.lab.cni import _policy, bridge, cni_named
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import Proc, State
from tests.unit.test_lab_ipv4_unchanged import recorded  # noqa: F401  (a fixture)

NODES = t.nodes(2)
CP, WORKER = NODES[0], NODES[1]
CIDRS6 = {"pw-control-plane": "fd10:0:0:4400::/64", "pw-worker": "fd10:0:0:4401::/64",
          "pw-worker2": "fd10:0:0:4402::/64"}


def _without(calls: list[list[str]], added: list[list[str]]) -> list[list[str]]:
    rest = list(calls)
    for c in added:
        rest.remove(c)
    return rest


# ---------------------------------------------------------------- the flag

@pytest.fixture
def untouchable(monkeypatch):
    """Anything past the input checks fails the test instead of touching this machine."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("lab up went past its input checks")
    monkeypatch.setattr(preflight, "check", refuse)
    monkeypatch.setattr(preflight, "proxy_mode", refuse)
    monkeypatch.setattr(preflight, "ip_family", refuse)
    monkeypatch.setattr(cluster, "load", refuse)


# (IPv6 alone was refused here until it was built: tests/unit/test_lab_ipv6only.py.)
def test_an_unknown_family_is_refused_in_one_line(untouchable):
    with pytest.raises(LabError, match=r"^--ip-family ipv5: ipv4, dual or ipv6$"):
        cluster.up(ip_family="ipv5", log=lambda m: None)


def test_the_cli_says_so_and_exits_1(untouchable, capsys):
    assert cli.main(["lab", "up", "--ip-family", "ipv5"]) == 1
    assert capsys.readouterr().err == "packetwalk: --ip-family ipv5: ipv4, dual or ipv6\n"


def test_dual_is_built_for_bridge_and_flannel_only(untouchable):
    assert "dual" in cni_named("bridge").ip_families and "dual" in cni_named("flannel").ip_families
    assert cni_named("kube-router").ip_families == ("ipv4",)
    with pytest.raises(LabError, match=r"^--ip-family dual: built for the bridge, flannel CNI only so far, "
                                       r"not kube-router \(docs/ipv6.md\)$"):
        cluster.up(cni="kube-router", ip_family="dual", log=lambda m: None)


def test_a_lab_of_the_other_family_is_not_switched_in_place():
    running = State(workers=2, cni="bridge", ip_family="ipv4", procs=[Proc("kubelet", "pw-worker", 1, 1, [])])
    with pytest.raises(LabError, match=r"runs with --ip-family ipv4; to switch to dual: `packetwalk lab "
                                       r"down`, then `packetwalk lab up --cni bridge --ip-family dual`"):
        cluster._refuse_switch(running, "bridge", "iptables", "dual")
    cluster._refuse_switch(running, "bridge", "iptables", "ipv4")
    cluster._refuse_switch(State(), "bridge", "iptables", "dual")  # nothing runs


def test_an_old_state_file_is_an_ipv4_lab(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "STATE_FILE", tmp_path / "state.json")
    (tmp_path / "state.json").write_text(json.dumps({"workers": 2, "cni": "bridge", "procs": []}))
    assert state.load().ip_family == "ipv4"
    monkeypatch.setattr(paths, "RUN_DIR", tmp_path)
    State(workers=2, ip_family="dual").save()
    assert state.load().ip_family == "dual"


def test_preflight_names_what_dual_stack_lacks(tmp_path):
    preflight.ip_family("ipv4", tmp_path)  # nothing asked, nothing checked
    with pytest.raises(LabError, match="this kernel has no IPv6"):
        preflight.ip_family("dual", tmp_path)
    conf = tmp_path / "sys/net/ipv6/conf/default"
    conf.mkdir(parents=True)
    (conf / "disable_ipv6").write_text("1\n")
    with pytest.raises(LabError, match="disable_ipv6 is not 0"):
        preflight.ip_family("dual", tmp_path)


# ---------------------------------------------------------------- Kubernetes

def _changed(ipv4: list[str], dual: list[str]) -> tuple[list[str], list[str]]:
    return [a for a in ipv4 if a not in dual], [a for a in dual if a not in ipv4]


def test_the_api_server_gets_both_service_ranges_and_nothing_else():
    assert _changed(components.kube_apiserver(CP), components.kube_apiserver(CP, family="dual")) == (
        ["--service-cluster-ip-range=10.96.0.0/16"],
        ["--service-cluster-ip-range=10.96.0.0/16,fd10:0:0:9600::/112"])


def test_the_controller_manager_gets_both_ranges_and_a_mask_per_family():
    assert _changed(components.kube_controller_manager(), components.kube_controller_manager("dual")) == (
        ["--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=24",
         "--service-cluster-ip-range=10.96.0.0/16"],
        ["--cluster-cidr=10.244.0.0/16,fd10:0:0:4400::/56", "--node-cidr-mask-size-ipv4=24",
         "--node-cidr-mask-size-ipv6=64", "--service-cluster-ip-range=10.96.0.0/16,fd10:0:0:9600::/112"])


def test_the_kubelet_names_both_node_ips():
    assert _changed(components.kubelet(WORKER), components.kubelet(WORKER, "dual")) == (
        ["--node-ip=10.250.0.11"], ["--node-ip=10.250.0.11,fd10:0:0:2500::11"])
    assert "--node-ip=10.250.0.10,fd10:0:0:2500::10" in components.kubelet(CP, "dual")
    # clusterDNS stays the IPv4 ClusterIP: one nameserver in every pod's resolv.conf.
    assert "clusterDNS: [10.96.0.10]" in components.kubelet_config(WORKER)


@pytest.mark.parametrize("mode", components.PROXY_MODES)
def test_kube_proxy_gets_both_cluster_cidrs(mode):
    ipv4 = components.kube_proxy_config(WORKER, mode)
    dual = components.kube_proxy_config(WORKER, mode, "dual")
    assert dual == ipv4.replace("clusterCIDR: 10.244.0.0/16\n",
                                "clusterCIDR: 10.244.0.0/16,fd10:0:0:4400::/56\n")
    assert dual != ipv4
    assert yaml.safe_load(dual)["clusterCIDR"] == "10.244.0.0/16,fd10:0:0:4400::/56"


def test_kube_router_polices_ipv4_only_for_its_ipv6_bug():
    # kube-router v2.1.0's IPv6 sync always fails and aborts the IPv4 one at random
    # (_policy.kube_router); with IPv6 off it refuses the IPv6 Service range, so the
    # flags are those of an IPv4 lab.
    assert _policy.kube_router(WORKER, "dual") == _policy.kube_router(WORKER)
    assert "--enable-ipv6=false" in _policy.kube_router(WORKER, "dual")
    assert "--enable-ipv4=true" in _policy.kube_router(WORKER, "dual")


def test_the_dns_service_is_require_dual_stack():
    text = (paths.LAB_MANIFESTS / "coredns.yaml").read_text()
    ipv4 = list(yaml.safe_load_all(text))
    dual = list(yaml.safe_load_all(components.coredns_manifest(text, "dual")))
    service = next(d for d in dual if d["kind"] == "Service" and d["metadata"]["name"] == "kube-dns")
    assert service["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert service["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert service["spec"]["clusterIPs"] == ["10.96.0.10", "fd10:0:0:9600::a"]
    assert service["spec"]["clusterIP"] == service["spec"]["clusterIPs"][0]
    # Everything else as the IPv4 lab applies it.
    for d in dual:
        if d is service:
            for key in ("ipFamilyPolicy", "ipFamilies", "clusterIPs"):
                del d["spec"][key]
    assert dual == ipv4
    with pytest.raises(LabError, match="expected one line"):
        components.coredns_manifest("kind: Service\n", "dual")


# ---------------------------------------------------------------- the bridge CNI

def test_the_conflist_has_both_range_sets_and_default_routes():
    dual = json.loads(bridge.conflist("10.244.1.0/24", pod_cidr6="fd10:0:0:4401::/64"))
    ipam = dual["plugins"][0]["ipam"]
    assert ipam == {"type": "host-local",
                    "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd10:0:0:4401::/64"}]],
                    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
    ipv4 = json.loads(bridge.conflist("10.244.1.0/24"))
    del dual["plugins"][0]["ipam"], ipv4["plugins"][0]["ipam"]
    assert dual == ipv4
    assert bridge.pod_cidr6_of(bridge.conflist("10.244.1.0/24", pod_cidr6="fd10:0:0:4401::/64")) == \
        "fd10:0:0:4401::/64"
    assert bridge.pod_cidr6_of(bridge.conflist("10.244.1.0/24")) is None


def test_each_node_routes_the_others_pod_64s_via_their_underlay_ipv6():
    assert [(r.ns, r.replace_args()) for r in bridge.pod_routes(NODES, CIDRS6, ipv6=True)] == [
        ("pw-control-plane", ["-6", "route", "replace", "fd10:0:0:4401::/64", "via", "fd10:0:0:2500::11"]),
        ("pw-control-plane", ["-6", "route", "replace", "fd10:0:0:4402::/64", "via", "fd10:0:0:2500::12"]),
        ("pw-worker", ["-6", "route", "replace", "fd10:0:0:4400::/64", "via", "fd10:0:0:2500::10"]),
        ("pw-worker", ["-6", "route", "replace", "fd10:0:0:4402::/64", "via", "fd10:0:0:2500::12"]),
        ("pw-worker2", ["-6", "route", "replace", "fd10:0:0:4400::/64", "via", "fd10:0:0:2500::10"]),
        ("pw-worker2", ["-6", "route", "replace", "fd10:0:0:4401::/64", "via", "fd10:0:0:2500::11"]),
        # The host's: inside its fd10::/48 blackhole, more specific, into pw-br0.
        (None, ["-6", "route", "replace", "fd10:0:0:4400::/64", "via", "fd10:0:0:2500::10"]),
        (None, ["-6", "route", "replace", "fd10:0:0:4401::/64", "via", "fd10:0:0:2500::11"]),
        (None, ["-6", "route", "replace", "fd10:0:0:4402::/64", "via", "fd10:0:0:2500::12"]),
    ]


def test_the_ipv6_pod_cidrs_come_from_spec_pod_cidrs():
    items = [{"metadata": {"name": "pw-worker"},
              "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd10:0:0:4401::/64"]}},
             {"metadata": {"name": "pw-worker2"}, "spec": {"podCIDR": "10.244.2.0/24"}}]
    assert cluster.ipv6_pod_cidrs(items) == {"pw-worker": "fd10:0:0:4401::/64"}


# ---------------------------------------------------------------- the wires

def _v6_calls(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if "-6" in c or any("ipv6" in a or "ip6tables" in a for a in c)]


def test_the_host_blackholes_before_its_first_ipv6_address(recorded):  # noqa: F811
    ipv4 = recorded(network.make_bridge)
    dual = recorded(network.make_bridge, family="dual")
    added = _v6_calls(dual)
    assert added == [
        ["ip", "-6", "route", "replace", "blackhole", "fd10::/48"],
        ["ip", "-6", "route", "replace", "blackhole", "2001:db8::/32"],
        ["sysctl", "-qw", "net.ipv6.conf.pw-br0.accept_ra=0"],
        ["ip", "-6", "addr", "replace", "fd10:0:0:2500::1/64", "dev", "pw-br0", "nodad"],
    ]
    assert _without(dual, added) == ipv4
    assert dual.index(added[-1]) < dual.index(["ip", "link", "set", "pw-br0", "up"])
    assert recorded(network.host_routes, family="dual") == recorded(network.host_routes) + [
        ["ip", "-6", "route", "replace", "2001:db8:100::/64", "via", "fd10:0:0:2500::fe"]]


def test_the_host_never_forwards_and_touches_only_lab_ipv6(recorded):  # noqa: F811
    calls = (recorded(network.make_bridge, family="dual") + recorded(network.host_routes, family="dual")
             + recorded(network.make_outside, family="dual")
             + [c for n in NODES for c in recorded(network.make_node, n, family="dual")])
    host = [c for c in calls if c[0] != "nsenter" and c[:2] != ["ip", "-n"]]
    assert not any("forwarding" in a for c in host for a in c)
    assert [c for c in host if c[0] == "sysctl"] == [["sysctl", "-qw", "net.ipv6.conf.pw-br0.accept_ra=0"]]
    for c in host:
        for a in c:
            try:
                net = ip_network(a, strict=False)
            except ValueError:
                continue
            if net.version == 6:
                assert net.subnet_of(t.ULA) or net.subnet_of(t.DOCUMENTATION6), c


def test_nodes_get_ipv6_beside_ipv4(recorded):  # noqa: F811
    ipv4 = recorded(network.make_node, WORKER)
    dual = recorded(network.make_node, WORKER, family="dual")
    ns = ["nsenter", "--net=/run/netns/pw-worker", "--"]
    ip6t = [*ns, "ip6tables", "-w", "-t", "nat"]
    added = dual[len(ipv4):]
    assert dual[:len(ipv4)] == ipv4  # the IPv4 node first, unchanged
    assert added == [
        [*ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_ra=0"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0"],
        ["ip", "-n", "pw-worker", "-6", "addr", "replace", "fd10:0:0:2500::11/64", "dev", "eth0", "nodad"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        ["ip", "-n", "pw-worker", "-6", "route", "replace", "default", "via", "fd10:0:0:2500::fe"],
        [*ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=1"],
        # The IPv4 PW-MASQ's shape (the recorder answers "" to every -S: a fresh node).
        [*ip6t, "-S", "PW-MASQ"], [*ip6t, "-N", "PW-MASQ"], [*ip6t, "-S", "POSTROUTING"],
        [*ip6t, "-A", "POSTROUTING", "-s", "fd10:0:0:4400::/56", "-j", "PW-MASQ"],
        [*ip6t, "-F", "PW-MASQ"],
        [*ip6t, "-A", "PW-MASQ", "-d", "fd10:0:0:4400::/56", "-j", "RETURN"],
        [*ip6t, "-A", "PW-MASQ", "-d", "fd10:0:0:2500::/64", "-j", "RETURN"],
        [*ip6t, "-A", "PW-MASQ", "-j", "MASQUERADE"],
    ]


def test_the_outside_answers_ipv6_and_routes_nowhere(recorded):  # noqa: F811
    ipv4 = recorded(network.make_outside)
    dual = recorded(network.make_outside, family="dual")
    ns = ["nsenter", "--net=/run/netns/pw-outside", "--"]
    assert dual[:len(ipv4)] == ipv4
    assert dual[len(ipv4):] == [
        [*ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_ra=0"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0"],
        ["ip", "-n", "pw-outside", "-6", "addr", "replace", "fd10:0:0:2500::fe/64", "dev", "eth0", "nodad"],
        ["ip", "-n", "pw-outside", "-6", "addr", "replace", "2001:db8:100::10/128", "dev", "lo", "nodad"],
        [*ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"],
    ]
    assert not any("route" in c for c in dual)  # no default route, in either family
    assert ip_address("2001:db8:100::10") in t.OUTSIDE6


UPLINK6 = """default via fe80::1 dev eth0 proto ra metric 100 pref medium
fd00::/64 dev eth0 proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
"""
LAB6 = """blackhole fd10::/48 dev lo metric 1024 pref medium
blackhole 2001:db8::/32 dev lo metric 1024 pref medium
fd10:0:0:4401::/64 via fd10:0:0:2500::11 dev pw-br0 metric 1024 pref medium
2001:db8:100::/64 via fd10:0:0:2500::fe dev pw-br0 metric 1024 pref medium
2001:db8:5::/64 via fd00::7 dev eth0 metric 1024 pref medium
blackhole fd10:1::/48 dev lo metric 1024 pref medium
"""


def test_down_removes_the_lab_ipv6_routes_and_the_blackholes_last():
    assert network.lab_routes6(UPLINK6) == []
    assert network.lab_routes6(UPLINK6 + LAB6) == [
        ["-6", "route", "del", "fd10:0:0:4401::/64"],
        ["-6", "route", "del", "2001:db8:100::/64"],
        ["-6", "route", "del", "blackhole", "fd10::/48"],
        ["-6", "route", "del", "blackhole", "2001:db8::/32"],
    ]  # not the uplink's, nor routes in those ranges that the lab did not make


def test_down_on_an_ipv4_host_only_reads_its_ipv6_routes(monkeypatch):
    calls = []

    def fake_run(argv, what, timeout=None, check=True):
        calls.append(argv)
        return UPLINK6 if argv[:4] == ["ip", "-6", "route", "show"] else ""
    monkeypatch.setattr(network, "run", fake_run)
    monkeypatch.setattr(network, "Path", lambda *_: type("NoLinks", (), {"iterdir": lambda self: iter(())})())
    network.teardown()
    assert [c for c in calls if "-6" in c] == [["ip", "-6", "route", "show"]]


@pytest.mark.parametrize(("get", "match", "dev"), [
    ("fd10:0:0:2500::11 from :: dev pw-br0 proto kernel src fd10:0:0:2500::1 metric 256 pref medium",
     "", "pw-br0"),
    ("", ("blackhole fd10::/48 dev lo metric 1024 pref medium\n"
          "default via fe80::1 dev eth0 proto ra metric 100 pref medium\n"), "blackhole"),
    ("blackhole fd10:0:0:9600::a from :: dev lo metric 1024 pref medium", "", "blackhole"),
])
def test_route_dev_asks_ip_6_for_ipv6(monkeypatch, get, match, dev):
    asked = []

    def fake_ip(*args, ns=None, check=True):
        asked.append(list(args))
        return get if "get" in args else match
    monkeypatch.setattr(network, "ip", fake_ip)
    assert network.route_dev("fd10:0:0:2500::11") == dev
    assert all(a[0] == "-6" for a in asked)


def test_every_lab_ipv6_range_is_sampled_inside_itself():
    for net in t.lab_ranges6():
        assert all(ip_address(a) in net for a in network.sample_addresses(net)), net


# ---------------------------------------------------------------- lab.json, the outside server

def test_egress_nat_is_the_one_switch_the_wires_and_lab_json_both_follow(recorded,  # noqa: F811
                                                                         monkeypatch):
    """Both families are NATed today, so make_node's per-family branches change nothing
    yet; they keep the wires and what lab.json tells the suite from parting when a
    family is switched off (the routed-IPv6 variant of docs/ipv6.md)."""
    nated = recorded(network.make_node, WORKER, family="dual")
    monkeypatch.setitem(t.EGRESS_NAT, "ipv6", False)
    routed = recorded(network.make_node, WORKER, family="dual")
    dropped = [c for c in nated if c not in routed]
    assert dropped and all("ip6tables" in c for c in dropped)  # only IPv6's PW-MASQ goes
    assert not any("ip6tables" in c for c in routed) and any("iptables" in c for c in routed)
    assert aboutlab.parse(info.describe(NODES, "bridge", "dual").to_json()).egress_nat == {
        "ipv4": True, "ipv6": False}


def test_lab_json_says_the_families():
    dual = aboutlab.parse(info.describe(NODES, "bridge", "dual").to_json())
    assert dual.ip_families == ("ipv4", "ipv6") and dual.outside_host6 == "2001:db8:100::10"
    assert json.loads(info.describe(NODES, "bridge", "dual").to_json())["ip_families"] == ["ipv4", "ipv6"]
    ipv4 = info.describe(NODES, "bridge")
    assert "ip_families" not in json.loads(ipv4.to_json())  # as before families existed
    assert aboutlab.parse(ipv4.to_json()).ip_families == ("ipv4",)
    assert dual.outside_host == ipv4.outside_host and dual.underlay == ipv4.underlay


def test_a_dual_lab_runs_a_second_outside_server():
    assert [name for name, _ in outside.servers("dual")] == [outside.PROC_NAME, outside.PROC_NAME6]
    assert outside.servers("dual")[0] == outside.servers()[0]
    argv6 = outside.servers("dual")[1][1]
    assert argv6[-2:] == [outside.SERVER6, "80"] and "--no-new-privs" in argv6


def test_the_ipv6_server_answers_bracketed_and_only_ipv6():
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("this machine has no IPv6 loopback (::1): the IPv6 server cannot be tried here")
    scope: dict = {"__name__": "outside6"}
    body, _, _ = outside.SERVER6.rpartition("V6Only((")
    # Our own constant, not input: the classes, without the line that serves port 80.
    exec(compile(body, "outside.SERVER6", "exec"), scope)  # noqa: S102
    server = scope["V6Only"](("::1", 0), scope["ClientIp"])
    assert server.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("::1", server.server_address[1], timeout=5)
        conn.request("GET", "/anything")
        answer = conn.getresponse().read().decode()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    assert answer.startswith("[::1]:") and answer.rpartition(":")[2].isdigit()
