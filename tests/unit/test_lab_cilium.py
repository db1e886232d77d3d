"""The cilium CNI's pure parts: what the agent and operator are told, the conflist,
no kube-proxy beside it, its faults and its build. Unit tests only: the lab has
not run any of it (docs/networks.md)."""

import json

import pytest

from packetwalk.lab import (
    build,
    cgroups,
    cluster,
    components,
    faults,
    nodes,
    paths,
    topology,
    versions,
)
from packetwalk.lab.cni import cilium, cni_named, kube_router, names
from packetwalk.lab.errors import LabError
from packetwalk.lab.state import State
from packetwalk.netfacts import REPLACES_KUBE_PROXY

NODES = topology.nodes(2)
CP, WORKER = NODES[0], NODES[1]


def _flag(argv: list[str], name: str) -> str:
    found = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    assert len(found) == 1, (name, found)
    return found[0]


def test_cilium_is_a_cni_of_its_own():
    assert "cilium" in names()
    assert cni_named("cilium") is cilium.CNI and cilium.CNI.builds == ("cilium",)
    assert versions.CILIUM == "v1.20.2"


def test_the_agent_runs_in_a_private_mount_namespace_of_the_node():
    argv = cilium.agent(WORKER)
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "sh"]
    script = argv[argv.index("-ec") + 1]
    assert 'mount --bind "$1" "$2"' in script
    assert "/proc/sys/kernel /proc/sys/net/core" in script and "remount,bind,ro" in script
    assert 'exec "$@"' in script and "tmpfs" not in script  # /run stays the node's: the socket is shared
    at = argv.index("cilium-agent-ns")
    assert argv[at + 1] == "/sys/fs/cgroup/unified/packetwalk/pw-worker"
    assert argv[at + 2] == "/var/lib/packetwalk/run/nodes/pw-worker/cilium-cgroup2"
    env_at = argv.index("env")
    assert argv[env_at + 1] == "K8S_NODE_NAME=pw-worker"
    assert argv[env_at + 2].startswith("PATH=/usr/lib/llvm-19/bin:")
    assert argv[env_at + 3] == "/var/lib/packetwalk/bin/cilium-agent"


def test_the_agent_flags():
    argv = cilium.agent(WORKER)
    want = {
        "k8s-kubeconfig-path": "/var/lib/packetwalk/kubeconfig",
        "k8s-namespace": "kube-system",
        "identity-allocation-mode": "crd",
        "ipam": "kubernetes",
        "routing-mode": "native",
        "auto-direct-node-routes": "true",
        "ipv4-native-routing-cidr": "10.244.0.0/16",
        "devices": "eth0",
        "direct-routing-device": "eth0",
        "kube-proxy-replacement": "true",
        "enable-host-legacy-routing": "true",
        "enable-ipv4-masquerade": "false",
        "enable-ipv6": "false",
        "enable-policy": "default",
        "enable-l7-proxy": "false",
        "lib-dir": "/var/lib/packetwalk/bin/cilium-lib",
        "state-dir": "/run/cilium",
        "bpf-root": "/sys/fs/bpf",
        "cgroup-root": "/var/lib/packetwalk/run/nodes/pw-worker/cilium-cgroup2",
    }
    assert {k: _flag(argv, k) for k in want} == want
    # Standalone-mode flags of the spike must not leak in: this agent is a Kubernetes one.
    assert not [a for a in argv if a.startswith(("--enable-k8s=", "--kvstore", "--ipv4-range"))]
    # The kubeconfig names the API server itself: there is no kube-proxy for the Service.
    assert topology.API_SERVER_IP.exploded == "10.250.0.10"


def test_each_node_gets_its_own_cgroup_root_and_name():
    roots = {_flag(cilium.agent(n), "cgroup-root") for n in NODES}
    names_ = {a for n in NODES for a in cilium.agent(n) if a.startswith("K8S_NODE_NAME=")}
    assert len(roots) == len(names_) == 3


def test_socket_lb_is_left_to_kube_proxy_replacement_as_on_a_real_install():
    # v1.20's --kube-proxy-replacement=true turns socket LB on for pods and the host
    # alike; no flag here pretends otherwise or narrows it to the host namespace.
    argv = cilium.agent(WORKER)
    assert _flag(argv, "kube-proxy-replacement") == "true"
    assert not [a for a in argv if a.startswith(("--bpf-lb-sock", "--bpf-lb-sock-hostns-only"))]


def test_the_operator_registers_crds_in_crd_mode():
    argv = cilium.operator(CP)
    assert argv[:2] == ["env", "K8S_NODE_NAME=pw-control-plane"]
    assert argv[2] == "/var/lib/packetwalk/bin/cilium-operator-generic"
    assert _flag(argv, "identity-allocation-mode") == "crd"
    assert _flag(argv, "ipam") == "kubernetes"
    assert _flag(argv, "k8s-kubeconfig-path") == "/var/lib/packetwalk/kubeconfig"
    assert not [a for a in argv if a.startswith("--skip-crd-creation")]


def test_bpffs_is_mounted_in_the_node_not_the_agent():
    argv = cilium.mount_bpffs(WORKER)
    assert argv[0] == "nsenter" and "--mount=/var/lib/packetwalk/run/ns/pw-worker.mnt" in argv
    assert argv[-1] == "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf"


def test_the_conflist():
    assert json.loads(cilium.conflist()) == {
        "cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": "cilium-cni"}]}
    assert cilium.CONFLIST == "05-cilium.conflist"


def test_configure_node_writes_the_conflist(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "NODES_DIR", tmp_path)
    cilium.CNI.configure_node(WORKER, "10.244.1.0/24")
    written = tmp_path / "pw-worker/root/etc/cni/net.d/05-cilium.conflist"
    assert written.read_text() == cilium.conflist()


def test_the_socket_is_where_the_node_and_the_agent_meet():
    assert "/run/cilium" in nodes.PRIVATE_PATHS
    assert cilium.SOCKET == "/var/run/cilium/cilium.sock" and cilium.STATE_DIR == "/run/cilium"


def test_containerd_finds_cilium_cni_in_the_lab_bin_dir():
    dirs = components.CNI_BIN_DIRS + cilium.CNI.cni_bin_dirs
    assert "bin_dirs = ['/usr/lib/cni', '/var/lib/packetwalk/bin']" in components.containerd_config(WORKER, dirs)
    assert "bin_dirs = ['/usr/lib/cni']\n" in components.containerd_config(WORKER)
    assert all(cni_named(n).cni_bin_dirs == () for n in names() if n != "cilium")


def test_the_lab_cnis_that_replace_kube_proxy_are_the_cores_list():
    """The lab's flag (lab up starts no kube-proxy) names exactly the lab's CNIs in the
    core's one list (the facts' 'none', the diagnosis's chains): cilium alone."""
    flagged = {n for n in names() if cni_named(n).replaces_kube_proxy}
    assert flagged == set(REPLACES_KUBE_PROXY) & set(names()) == {"cilium"}


def _recording_node_agents(monkeypatch) -> list[tuple[str, str]]:
    started: list[tuple[str, str]] = []
    monkeypatch.setattr(cluster, "start", lambda state, node, name, argv: started.append((node, name)))
    monkeypatch.setattr(cluster, "check_running", lambda p, grace=0: None)
    monkeypatch.setattr(cluster, "wait_for", lambda what, probe, timeout, every=1.0: None)
    monkeypatch.setattr(cluster, "kubectl", lambda *a, **k: "")
    return started


@pytest.mark.parametrize("kube_proxy", [True, False])
def test_node_agents_start_kube_proxy_unless_the_cni_replaces_it(monkeypatch, kube_proxy):
    started = _recording_node_agents(monkeypatch)
    cluster._node_agents(State(), NODES, lambda _m: None, kube_proxy=kube_proxy)
    assert [s for s in started if s[1] == "kubelet"] == [(n.name, "kubelet") for n in NODES]
    assert [s for s in started if s[1] == "kube-proxy"] == (
        [(n.name, "kube-proxy") for n in NODES] if kube_proxy else [])


def test_up_asks_the_cni_whether_to_start_kube_proxy():
    import inspect
    assert "kube_proxy=not net.replaces_kube_proxy" in inspect.getsource(cluster.up)


def test_status_says_there_is_no_kube_proxy():
    assert cluster.proxy_line(State(cni="cilium")) == (
        "kube-proxy: none (Services are translated by the CNI, cilium)")
    assert cluster.proxy_line(State(cni="bridge", proxy_mode="nftables")) == "kube-proxy: nftables mode"


def test_the_faults_that_apply():
    net = cilium.CNI
    assert net.faults_supported == {
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "egress-masquerade", "cross-node-route", "cilium-agent-down"}
    assert net.faults_supported <= faults.all_names()
    for gone in ("kube-proxy-broken", "policy-enforcer-down", "nodeport-blocked", "hairpin-off",
                 "udp-dropped", "policy-ignores-except"):
        assert gone not in net.faults_supported
    own = {f.name: f for f in net.own_faults}
    assert set(own) == {"cilium-agent-down"} and own["cilium-agent-down"].per_node
    assert "cilium-agent-down" in faults.faults_for(net)


def test_cilium_agent_down_stops_the_agent_on_that_node_only(monkeypatch):
    stopped = []
    monkeypatch.setattr(cilium, "stop_component", lambda state, name, node: stopped.append((name, node)))
    fault = cilium.CNI.own_faults[0]
    fault.inject(State(), NODES, {}, WORKER)
    assert stopped == [("cilium-agent", "pw-worker")]


def test_cilium_agent_down_heals_by_starting_the_agent(monkeypatch):
    calls = []
    monkeypatch.setattr(cilium, "_start_agent", lambda state, node: calls.append(node.name))
    cilium.CNI.own_faults[0].heal(State(), NODES, {}, WORKER)
    assert calls == ["pw-worker"]


def test_cross_node_route_drops_pod_traffic_into_the_node(monkeypatch):
    ran = []
    monkeypatch.setattr(kube_router, "run", lambda argv, what, **k: ran.append(argv))
    cilium.CNI.cut_off(NODES, {"pw-worker": "10.244.1.0/24"}, WORKER)
    assert ran == [["nsenter", "--net=/run/netns/pw-worker", "--", "iptables", "-w", "-t", "raw", "-I",
                    "PREROUTING", "-i", "eth0", "-d", "10.244.1.0/24", "-j", "DROP"]]


def test_start_runs_the_operator_first_on_the_control_plane(monkeypatch):
    order = []
    monkeypatch.setattr(cilium, "start", lambda state, node, name, argv: order.append((node, name)))
    monkeypatch.setattr(cilium, "_await_crds", lambda state, node: order.append((node.name, "crds")))
    monkeypatch.setattr(cilium, "_start_agent", lambda state, node: order.append((node.name, "agent")))
    for n in NODES:
        cilium.CNI.start(State(), n)
    assert order == [("pw-control-plane", "cilium-operator"), ("pw-control-plane", "crds"),
                     ("pw-control-plane", "agent"), ("pw-worker", "agent"), ("pw-worker2", "agent")]


def test_unified_cgroup_dirs_are_made_and_removed(tmp_path):
    with pytest.raises(LabError, match="no cgroup2"):
        cgroups.ensure_unified("pw-worker", tmp_path / "missing")
    d = cgroups.ensure_unified("pw-worker", tmp_path)
    assert d == tmp_path / "packetwalk/pw-worker" and d.is_dir()
    cgroups.remove_unified(tmp_path)
    assert not (tmp_path / "packetwalk").exists()
    cgroups.remove_unified(tmp_path)  # nothing there: no error


def test_the_build_is_for_cilium_only():
    c = next(c for c in build.COMPONENTS if c.name == "cilium")
    assert c.version == versions.CILIUM and "cilium" in build.FOR_CNI
    assert c.outputs == ("cilium-agent", "cilium-cni", "cilium-operator-generic", "cilium-lib")


def test_build_cilium(tmp_path, monkeypatch):
    for attr, sub in (("BUILD_DIR", "build"), ("BIN_DIR", "bin"), ("GOMODCACHE", "mod")):
        monkeypatch.setattr(paths, attr, tmp_path / sub)
    bpf = tmp_path / "mod/github.com/cilium/cilium@v1.20.2/bpf"
    (bpf / "lib").mkdir(parents=True)
    (bpf / "bpf_lxc.c").write_text("/* datapath */")
    wrapped, built = [], []
    monkeypatch.setattr(build, "wrapper_module",
                        lambda name, requires, extra="": wrapped.append((name, requires, extra)) or tmp_path)
    monkeypatch.setattr(build, "go", lambda args, cwd=None, what="", cgo=False: built.append(args))
    c = next(c for c in build.COMPONENTS if c.name == "cilium")
    c.build(c)
    (name, requires, extra), = wrapped
    assert name == "cilium" and requires == {"github.com/cilium/cilium": "v1.20.2"}
    for pkg in ("daemon", "plugins/cilium-cni", "operator"):
        assert f"tool github.com/cilium/cilium/{pkg}\n" in extra
    assert "replace github.com/osrg/gobgp/v4 => github.com/osrg/gobgp/v4 v4.7.0\n" in extra
    stub = tmp_path / "build/cilium-mcs-controllers"
    assert f"replace sigs.k8s.io/mcs-api/controllers => {stub}\n" in extra
    assert (stub / "go.mod").read_text().startswith("module sigs.k8s.io/mcs-api/controllers\n")
    assert "DerivedServiceAnnotation" in (stub / "controllers.go").read_text()
    outs = {a[a.index("-o") + 1]: (a[a.index("-tags") + 1], a[-1]) for a in built}
    assert outs == {
        str(tmp_path / "bin/cilium-agent"): ("osusergo", "github.com/cilium/cilium/daemon"),
        str(tmp_path / "bin/cilium-cni"): ("osusergo", "github.com/cilium/cilium/plugins/cilium-cni"),
        str(tmp_path / "bin/cilium-operator-generic"): ("osusergo,ipam_provider_operator",
                                                        "github.com/cilium/cilium/operator"),
    }
    assert all("-X github.com/cilium/cilium/pkg/version.ciliumVersion=1.20.2" in a[a.index("-ldflags") + 1]
               for a in built)
    assert (tmp_path / "bin/cilium-lib/bpf/bpf_lxc.c").read_text() == "/* datapath */"


def test_build_cilium_without_datapath_sources_fails(tmp_path, monkeypatch):
    for attr, sub in (("BUILD_DIR", "build"), ("BIN_DIR", "bin"), ("GOMODCACHE", "mod")):
        monkeypatch.setattr(paths, attr, tmp_path / sub)
    monkeypatch.setattr(build, "wrapper_module", lambda *a, **k: tmp_path)
    monkeypatch.setattr(build, "go", lambda *a, **k: None)
    with pytest.raises(LabError, match="no datapath sources"):
        build.build_cilium(next(c for c in build.COMPONENTS if c.name == "cilium"))


def test_build_all_skips_cilium_for_the_other_cnis(monkeypatch):
    seen = []
    monkeypatch.setattr(build, "_ready_to_build", lambda: None)
    monkeypatch.setattr(build, "build_one", lambda c, log=print: seen.append(c.name))
    build.build_all(lambda _m: None, cni_named("flannel").builds)
    assert "cilium" not in seen and "flannel" in seen
    seen.clear()
    build.build_all(lambda _m: None, cilium.CNI.builds)
    assert "cilium" in seen and "flannel" not in seen and "kube-router" not in seen


def test_waits_fail_in_one_line_naming_the_log(monkeypatch):
    from packetwalk.lab.state import Proc
    state = State(procs=[Proc("cilium-agent", "pw-worker", 1, 1, [])])
    monkeypatch.setattr(cilium, "check_running", lambda p: None)
    monkeypatch.setattr(cilium.time, "sleep", lambda s: None)
    cilium._await(state, WORKER, "cilium-agent", lambda: True, "never", 0)  # ready: returns
    with pytest.raises(LabError, match=r"cilium-agent on pw-worker: no answer within 0s \(log: .*"
                                       r"pw-worker-cilium-agent.log\)"):
        cilium._await(state, WORKER, "cilium-agent", lambda: False, "no answer", 0)


def test_cilium_is_ipv4_only_and_a_dual_lab_refuses_it():
    assert cilium.CNI.ip_families == ("ipv4",)
    with pytest.raises(LabError, match="--ip-family dual"):
        cluster.check_cni_family(cilium.CNI, "dual")


def test_a_host_without_clang_is_one_line_before_anything_is_touched(monkeypatch):
    # Measured: on a machine without clang-19, `lab up --cni cilium` built the binaries,
    # then every agent died on "exec: clang: executable file not found" and the up
    # timed out 120 s later on CoreDNS. Now it stops first, naming what to install.
    assert cilium.CNI.host_needs[0] == (f"{cilium.CLANG_PATH}/clang", "clang-19")
    missing = type("Needy", (type(cilium.CNI),), {"host_needs": (("/nonexistent/clang", "clang-19"),
                                                                  ("/nonexistent/llc", "llvm-19"))})()
    monkeypatch.setattr(cluster, "cni_named", lambda name: missing)
    monkeypatch.setattr(cluster.preflight, "check", lambda: pytest.fail("went past the check"))
    with pytest.raises(LabError) as refused:
        cluster.up(cni="cilium", log=lambda m: None)
    assert str(refused.value) == ("--cni cilium needs /nonexistent/clang, /nonexistent/llc: "
                                  "apt-get install clang-19 llvm-19")
    cluster.check_host_needs(cni_named("bridge"))  # needs nothing
