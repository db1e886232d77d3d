"""Bring the lab up and down: the order of things and the waits between them."""

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

from . import (
    build,
    cgroups,
    components,
    images,
    info,
    journal,
    netstatus,
    network,
    nodes,
    outside,
    paths,
    pki,
    podsecurity,
    preflight,
    versions,
)
from . import topology as t
from .cni import DEFAULT_CNI, Cni, cni_named
from .cni import names as cni_names
from .errors import LabError
from .processes import (
    alive,
    as_node_process,
    check_running,
    enter,
    run,
    start,
    stop,
    stop_component,
)
from .state import State, load

Log = Callable[[str], None]

# The kubelet raises these host-wide sysctls (protectKernelDefaults=false);
# `down` puts them back.
KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops",
                   "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")


def kubectl(*args: str, timeout: float = 30, check: bool = True, stdin: str | None = None) -> str:
    argv = [str(paths.kubectl()), f"--kubeconfig={paths.KUBECONFIG}", f"--request-timeout={int(timeout)}s",
            *args]
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout + 5, check=False)
    if check and r.returncode != 0:
        raise LabError(f"kubectl {' '.join(args[:3])} failed: {r.stderr.strip()[-300:]}")
    return r.stdout


def wait_for(what: str, probe: Callable[[], bool], timeout: float, every: float = 1.0) -> None:
    """Poll probe until it is true; on timeout, one line saying what was awaited."""
    waiter = retry(stop=stop_after_delay(timeout), wait=wait_fixed(every),
                   retry=retry_if_result(lambda ok: not ok))(probe)
    try:
        waiter()
    except RetryError:
        raise LabError(f"timed out after {timeout:.0f}s waiting for {what}") from None


def _quietly(probe: Callable[[], bool]) -> Callable[[], bool]:
    def wrapped() -> bool:
        try:
            return probe()
        except (LabError, subprocess.SubprocessError, OSError):
            return False
    return wrapped


def node_list(workers: int) -> list[t.Node]:
    return t.nodes(workers)


# ---------------------------------------------------------------- up

def up(workers: int = 2, log: Log = print, cni: str = DEFAULT_CNI,
       pod_security: str = podsecurity.DEFAULT,
       proxy_mode: str = components.DEFAULT_PROXY_MODE, ip_family: str = t.DEFAULT_IP_FAMILY) -> None:
    """Bring the lab up. A lab already up with another CNI, proxy mode or IP family is
    refused (switching a network in place would leave it half-switched); one with
    other workers or Pod Security settings is taken down and brought up with these:
    the API server's admission is fixed at its start."""
    net = cni_named(cni)  # bad input first: one line, nothing touched
    components.check_proxy_mode(proxy_mode)
    components.check_ip_family(ip_family)
    check_cni_family(net, ip_family)
    if pod_security not in podsecurity.LEVELS:
        raise LabError(f"--pod-security {pod_security}: one of {', '.join(podsecurity.LEVELS)}")
    check_host_needs(net)
    preflight.check()
    preflight.proxy_mode(proxy_mode)
    preflight.ip_family(ip_family)
    _refuse_switch(load(), net.name, proxy_mode, ip_family)
    started = time.monotonic()
    # Build first: a broken build must fail before anything running is touched.
    spent = build.build_all(log, net.builds)
    if spent:
        log("built: " + ", ".join(f"{k} {v:.0f}s" for k, v in spent.items()))
    archives = images.build_all(paths.BIN_DIR, paths.IMAGES_DIR)
    state = load()
    if (state.procs and healthy(state) and state.workers == workers and state.cni == net.name
            and state.pod_security == pod_security and state.proxy_mode == proxy_mode
            and state.ip_family == ip_family):
        _refresh_outside_server(state, log)
        # a lab up before the file existed tells it now
        info.publish(node_list(workers), net.name, state.ip_family)
        log(f"the lab is already up; kubeconfig: {paths.KUBECONFIG}")
        return
    if state.procs or paths.RUN_DIR.exists() or network.exists("pw-control-plane"):
        changed = state.procs and state.pod_security != pod_security
        log(f"the lab runs with Pod Security {state.pod_security}; bringing it up again with "
            f"{pod_security}" if changed else "clearing a previous lab first")
        down(log=lambda _m: None)

    state = State(workers=workers, cni=net.name, pod_security=pod_security,
                  proxy_mode=proxy_mode, ip_family=ip_family)
    state.mounted_hugetlb = cgroups.ensure_hugetlb()
    state.made_netns_mount = not nodes.is_mountpoint(network.NETNS)
    state.sysctls = {k: run(["sysctl", "-n", k], "sysctl") .strip() for k in KUBELET_SYSCTLS}
    state.save()
    lab_nodes = node_list(workers)
    _host_and_nodes(state, lab_nodes, archives, log)
    _control_plane(state, lab_nodes[0], log)
    _node_agents(state, lab_nodes, log, kube_proxy=not net.replaces_kube_proxy)
    cidrs = _pod_networks(net, lab_nodes, ip_family)
    # CNI agents start once their node has a pod CIDR: kube-router's policy
    # controller dies (with a nil-heartbeat panic) if it starts before.
    for n in lab_nodes:
        net.start(state, n)
    _addons(ip_family)
    _outside_server(state)
    _wait_healthy(lab_nodes, ip_family)
    # An agent that refused its flags and exited (kube-router does, after a second)
    # leaves every node Ready: a lab is up only when every process it started runs.
    if found := dead(state):
        raise LabError("the lab came up broken: " + "; ".join(found))
    info.publish(lab_nodes, net.name, ip_family)
    log(f"lab up in {time.monotonic() - started:.0f}s: {len(lab_nodes)} nodes "
        f"({', '.join(f'{n} {c}' for n, c in cidrs.items())})")
    log(f"kubeconfig: {paths.KUBECONFIG}")


def upgrade(spec: str, vxlan_port: int | None = None, only: list[str] | None = None,
            log: Log = print) -> None:
    """`lab upgrade --cni NAME@VERSION`: the running CNI's agent at another version,
    node by node (`only`: these nodes, a canary or a rollout paused half way).
    Bad input is one line before anything is built or touched."""
    name, sep, version = spec.partition("@")
    if not sep or not version:
        raise LabError(f"--cni {spec!r}: NAME@VERSION, e.g. flannel@{versions.FLANNEL_UPGRADE}")
    net = cni_named(name)
    if not net.upgrades:
        raise LabError(f"the lab offers no upgrade of {name}; it offers: "
                       + ", ".join(f"{n}@{' / '.join(cni_named(n).upgrades)}"
                                   for n in cni_names() if cni_named(n).upgrades))
    if version not in net.upgrades:
        raise LabError(f"{name} {version} is not offered; choices: {', '.join(net.upgrades)}")
    if vxlan_port is not None and not 1024 <= vxlan_port <= 65535:
        raise LabError(f"--vxlan-port {vxlan_port}: a port in 1024-65535")
    state = load()
    if not state.procs:
        raise LabError(f"the lab is down: `packetwalk lab up --cni {name}` first")
    if state.cni != name:
        raise LabError(f"the lab runs the {state.cni} CNI, not {name}; an upgrade changes the running "
                       f"CNI's version (to switch: `packetwalk lab down`, `packetwalk lab up --cni {name}`)")
    lab_nodes = node_list(state.workers)
    unknown = sorted(set(only or ()) - {n.name for n in lab_nodes})
    if unknown:
        raise LabError(f"--nodes: no node {', '.join(unknown)}; the lab's: "
                       f"{', '.join(n.name for n in lab_nodes)}")
    started = time.monotonic()
    journal.record("upgrading", f"{name}@{version}")
    net.upgrade(state, [n for n in lab_nodes if not only or n.name in only], version, log,
                vxlan_port, all_nodes=not only or set(only) >= {n.name for n in lab_nodes})
    journal.record("upgraded", f"{name}@{version}")
    log(f"upgraded to {name} {version} in {time.monotonic() - started:.0f}s")


def check_host_needs(net: Cni) -> None:
    """What the CNI's agent runs from the host (Cni.host_needs): one line naming the
    missing files and the packages that have them."""
    missing = [(path, package) for path, package in net.host_needs if not Path(path).exists()]
    if missing:
        raise LabError(f"--cni {net.name} needs {', '.join(p for p, _ in missing)}: "
                       f"apt-get install {' '.join(dict.fromkeys(k for _, k in missing))}")


def check_cni_family(net: Cni, family: str) -> None:
    """Dual-stack and IPv6-only are built for some CNIs only (Cni.ip_families): the
    others refuse them in one line, before anything is touched."""
    if family not in net.ip_families:
        built = [n for n in cni_names() if family in cni_named(n).ip_families]
        raise LabError(f"--ip-family {family}: built for the {', '.join(built)} CNI only so far, "
                       f"not {net.name} (docs/ipv6.md)")


def _refuse_switch(state: State, wanted: str, proxy_mode: str = components.DEFAULT_PROXY_MODE,
                   ip_family: str = t.DEFAULT_IP_FAMILY) -> None:
    """A lab on another CNI, proxy mode or IP family is never switched in place: a
    half-switched network (some nodes on each) would pass for neither."""
    if state.procs and state.cni != wanted:
        raise LabError(f"the lab runs the {state.cni} CNI; to switch to {wanted}: "
                       f"`packetwalk lab down`, then `packetwalk lab up --cni {wanted}`")
    if state.procs and state.proxy_mode != proxy_mode:
        raise LabError(f"the lab's kube-proxy runs in {state.proxy_mode} mode; to switch to {proxy_mode}: "
                       f"`packetwalk lab down`, then `packetwalk lab up --cni {wanted} "
                       f"--proxy-mode {proxy_mode}`")
    if state.procs and state.ip_family != ip_family:
        raise LabError(f"the lab runs with --ip-family {state.ip_family}; to switch to {ip_family}: "
                       f"`packetwalk lab down`, then `packetwalk lab up --cni {wanted} "
                       f"--ip-family {ip_family}`")


def _host_and_nodes(state: State, lab_nodes: list[t.Node], archives: dict[str, Path], log: Log) -> None:
    family = state.ip_family
    pki.ensure(family)
    paths.KUBECONFIG.write_text(pki.kubeconfig(components.api_server_url(family)))
    network.make_bridge(family)  # dual-stack, IPv6-only: the host's IPv6 blackholes first
    network.host_routes(family)
    network.make_outside(family)
    for n in lab_nodes:
        d = paths.node_dir(n.name)
        d.mkdir(parents=True, exist_ok=True)
        cni_bin_dirs = components.CNI_BIN_DIRS + cni_named(state.cni).cni_bin_dirs
        (d / "containerd.toml").write_text(components.containerd_config(n, cni_bin_dirs))
        (d / "kubelet.yaml").write_text(components.kubelet_config(n, family))
        (d / "kube-proxy.yaml").write_text(components.kube_proxy_config(n, state.proxy_mode, family))
        (d / "resolv.conf").write_text("# packetwalk lab: no resolver outside the cluster\n")
        network.make_node(n, family)
        nodes.make(state, n.name)
        cgroups.ensure(cgroups.node_path(n.name))
        p = start(state, n.name, "containerd", components.containerd(n))
        sock = components.containerd_socket(n)
        wait_for(f"containerd on {n.name} ({sock})", lambda s=sock: Path(s).exists(), 30, 0.2)
        check_running(p)
    for n in lab_nodes:
        for name, tar in archives.items():
            run([str(paths.BIN_DIR / "ctr"), "--address", components.containerd_socket(n), "-n", "k8s.io",
                 "images", "import", "--platform", "linux/amd64", "--no-unpack", str(tar)],
                f"importing {name} into {n.name}", timeout=120)
    log(f"{len(lab_nodes)} nodes, {len(archives)} images imported into each")


def _control_plane(state: State, cp: t.Node, log: Log) -> None:
    preflight.port_free(cp.name, t.API_PORT)
    etcd = start(state, cp.name, "etcd", components.etcd(cp))
    wait_for("etcd health", _quietly(lambda: "true" in run(
        enter(cp.name) + ["curl", "-s", "-m", "2", "http://127.0.0.1:2379/health"], "etcd")), 30, 0.5)
    check_running(etcd)
    admission = None
    if podsecurity.configured(state.pod_security):
        paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
        podsecurity.ADMISSION_CONFIG.write_text(podsecurity.admission_config(state.pod_security))
        admission = str(podsecurity.ADMISSION_CONFIG)
    api = start(state, cp.name, "kube-apiserver", components.kube_apiserver(cp, admission, state.ip_family))
    api_ready = _quietly(lambda: kubectl("get", "--raw=/readyz", timeout=5).strip() == "ok")
    wait_for("kube-apiserver /readyz", lambda: check_running(api) or api_ready(), 90, 1)
    if admission:
        # Before anything else makes a namespace: no namespace may weaken the level.
        kubectl("apply", "-f", "-", stdin=podsecurity.guard(state.pod_security))
    start(state, cp.name, "kube-controller-manager", components.kube_controller_manager(state.ip_family))
    start(state, cp.name, "kube-scheduler", components.kube_scheduler())
    log("control plane up")


def _node_agents(state: State, lab_nodes: list[t.Node], log: Log, kube_proxy: bool = True) -> None:
    """The kubelets and, unless the CNI replaces it (kube_proxy False), kube-proxy."""
    for n in lab_nodes:
        start(state, n.name, "kubelet", components.kubelet(n, state.ip_family))
        if kube_proxy:
            start(state, n.name, "kube-proxy", components.kube_proxy(n))
    names = {n.name for n in lab_nodes}

    def registered() -> bool:
        items = json.loads(kubectl("get", "nodes", "-o", "json", timeout=5))["items"]
        return names <= {i["metadata"]["name"] for i in items if i["spec"].get("podCIDR")}

    for p in state.procs:
        check_running(p, grace=0)
    wait_for("every node to register and get a pod CIDR", _quietly(registered), 90, 1)
    kubectl("label", "node", lab_nodes[0].name, "node-role.kubernetes.io/control-plane=", "--overwrite")
    log("kubelets registered")


def pod_cidrs() -> dict[str, str]:
    items = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    return {i["metadata"]["name"]: i["spec"]["podCIDR"] for i in items if i["spec"].get("podCIDR")}


def ipv6_pod_cidrs(items: list[dict]) -> dict[str, str]:
    """Each node's IPv6 pod CIDR from its spec.podCIDRs (a dual-stack lab's), from
    `kubectl get nodes -o json`'s items."""
    return {i["metadata"]["name"]: c for i in items for c in i["spec"].get("podCIDRs", []) if ":" in c}


def pod_cidrs6() -> dict[str, str]:
    return ipv6_pod_cidrs(json.loads(kubectl("get", "nodes", "-o", "json"))["items"])


def check_pod_cidrs(cidrs: dict[str, str], family: str) -> None:
    """An IPv6-only lab's nodes must each have an IPv6 pod CIDR (spec.podCIDR), or the
    CNI would be given IPv4 ranges: one line naming the nodes."""
    wrong = sorted(name for name, c in cidrs.items() if t.ipv6_only(family) and ":" not in c)
    if wrong:
        raise LabError(f"no IPv6 pod CIDR on {', '.join(wrong)}: the controller-manager gave "
                       "IPv4 in an IPv6-only lab (its --cluster-cidr?)")


def _pod_networks(net: Cni, lab_nodes: list[t.Node], family: str = t.DEFAULT_IP_FAMILY) -> dict[str, str]:
    """The CNI config per node, from the CIDR the controller-manager gave it, and
    what joins the nodes' pod networks (dual-stack: its IPv6 CIDR too; IPv6-only:
    the node's one pod CIDR is IPv6, and the CNI is given it as it is)."""
    cidrs = pod_cidrs()
    check_pod_cidrs(cidrs, family)
    if not t.dual(family):
        for n in lab_nodes:
            net.configure_node(n, cidrs[n.name])
        net.after_cidrs(lab_nodes, cidrs)
        return cidrs
    cidrs6 = pod_cidrs6()
    missing = [n.name for n in lab_nodes if n.name not in cidrs6]
    if missing:
        raise LabError(f"no IPv6 pod CIDR on {', '.join(missing)}: the controller-manager "
                       "gave only IPv4 (its --cluster-cidr?)")
    for n in lab_nodes:
        net.configure_node(n, cidrs[n.name], cidrs6[n.name])
    net.after_cidrs(lab_nodes, cidrs, cidrs6)
    return {name: f"{c} {cidrs6[name]}" for name, c in cidrs.items()}


def _addons(family: str = t.DEFAULT_IP_FAMILY) -> None:
    manifest = paths.LAB_MANIFESTS / "coredns.yaml"
    if not t.has_ipv6(family):
        kubectl("apply", "-f", str(manifest))
        return
    kubectl("apply", "-f", "-", stdin=components.coredns_manifest(manifest.read_text(), family))


def _outside_server(state: State) -> None:
    """The outside world's one host, unprivileged: every path answers the source it sees
    (dual-stack, IPv6-only: a second server answers on [::]:80)."""
    network.sysctl(t.OUTSIDE_NS, *outside.UNPRIVILEGED_PORT_SYSCTL)
    for name, argv in outside.servers(state.ip_family):
        p = start(state, t.OUTSIDE_NS, name, argv, netns_only=True)
        check_running(p, grace=0.5)


def _refresh_outside_server(state: State, log: Log) -> None:
    """A lab brought up by an older packetwalk may run another outside host (agnhost
    netexec as root, with /shell): replace whatever differs from today's."""
    running = [p for p in state.procs if p.node == t.OUTSIDE_NS]
    if [(p.name, p.argv) for p in running] == outside.servers(state.ip_family):
        return
    for p in running:
        stop_component(state, p.name, p.node)
    _outside_server(state)
    log("replaced the outside host's server with today's (unprivileged, no command endpoint)")


def _nodes_ready() -> bool:
    items = json.loads(kubectl("get", "nodes", "-o", "json", timeout=5))["items"]
    return bool(items) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
        for i in items)


def dns_question(family: str = t.DEFAULT_IP_FAMILY) -> tuple[list[str], str]:
    """(dig's argv, the answer it must give): the kubernetes Service's address, asked of
    the kube-dns Service. IPv6-only: AAAA, of the IPv6 DNS Service. A dual lab asks
    in IPv4 only (docs/ipv6.md: its IPv6 Service path is not part of its health)."""
    six = t.ipv6_only(family)
    server, want = (t.DNS_SERVICE_IP6, t.KUBERNETES_SERVICE_IP6) if six else (
        t.DNS_SERVICE_IP, t.KUBERNETES_SERVICE_IP)
    return (["dig", "+short", "+time=2", "+tries=1", *(["AAAA"] if six else []), f"@{server}",
             f"kubernetes.default.svc.{t.CLUSTER_DOMAIN}"], str(want))


def dns_answers(node: str, family: str = t.DEFAULT_IP_FAMILY) -> bool:
    """CoreDNS answers through the kube-dns Service, as seen from a node: dig runs
    as one of the node's host processes (as_node_process), so on a CNI that
    translates Services in socket hooks (cilium) it is translated as a real node's
    own traffic is."""
    argv, want = dns_question(family)
    return run(as_node_process(node) + argv, "dig", check=False).strip() == want


def dns_replicas_unready() -> str:
    """'' when every CoreDNS replica the Deployment asks for is Ready; else what is
    missing. The suites test each DNS pod from each node, so a replica still
    starting (after a heal, a restart) changes which ids run: the lab is not
    healthy until all are Ready."""
    out = kubectl("-n", "kube-system", "get", "deployment/coredns", "-o",
                  "jsonpath={.spec.replicas} {.status.readyReplicas}", timeout=5).split()
    want, ready = int(out[0]), int(out[1]) if len(out) > 1 else 0
    return "" if ready >= want else f"CoreDNS has {ready} of {want} replicas Ready"


def _wait_healthy(lab_nodes: list[t.Node], family: str = t.DEFAULT_IP_FAMILY) -> None:
    wait_for("every node to be Ready", _quietly(_nodes_ready), 120, 2)
    wait_for("CoreDNS to answer through the kube-dns Service",
             _quietly(lambda: all(dns_answers(n.name, family) for n in lab_nodes)), 120, 2)
    wait_for("every CoreDNS replica to be Ready", _quietly(lambda: not dns_replicas_unready()), 120, 2)


def problems(state: State) -> list[str]:
    """What keeps the lab from being healthy, one line each ([] when healthy):
    a dead component with the last line of its log, nodes not Ready, CoreDNS
    replicas not Ready, a node whose DNS lookup through the kube-dns Service fails. A test or CI run that
    finds the lab broken prints these, so the cause is in its output."""
    found = dead(state)
    try:
        if not _nodes_ready():
            found.append("not every node is Ready")
        if unready := dns_replicas_unready():
            found.append(unready)
        found += [f"DNS through the kube-dns Service fails from {n.name}"
                  for n in node_list(state.workers) if not dns_answers(n.name, state.ip_family)]
    except (LabError, subprocess.SubprocessError, OSError, ValueError) as e:
        found.append(f"the API server does not answer: {e}")
    return found


def dead(state: State) -> list[str]:
    """Each process the lab started that is not running, with its log's last line."""
    found = []
    for p in state.procs:
        if not alive(p):
            log = paths.LOG_DIR / f"{p.node}-{p.name}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            found.append(f"{p.name} on {p.node} is not running (pid {p.pid}); last log line: "
                         f"{tail[0][:300] if tail else '(none)'}")
    return found


def healthy(state: State) -> bool:
    return not problems(state)


# ---------------------------------------------------------------- down

def down(log: Log = print) -> None:
    preflight.require_root()
    started = time.monotonic()
    info.withdraw()  # first: from here on the engine no longer takes this for the lab
    state = load()
    stop(state.procs)
    # Shims and containers are not ours by pid; they are ours by cgroup.
    cgroups.kill_all("/" + cgroups.TOP)
    nodes.remove_all()
    network.teardown()
    cgroups.remove("/" + cgroups.TOP)
    cgroups.remove_unified()  # cilium's cgroup2 roots; nothing there for the other CNIs
    if state.mounted_hugetlb:
        run(["umount", str(cgroups.ROOT / "hugetlb")], "unmount hugetlb", check=False)
        try:
            (cgroups.ROOT / "hugetlb").rmdir()
        except OSError:
            pass
    for key, value in state.sysctls.items():
        run(["sysctl", "-qw", f"{key}={value}"], "restore sysctl", check=False)
    network.release_netns_dir(state.made_netns_mount)
    nodes.remove_created_dirs(state)
    _remove_run_dir()
    paths.KUBECONFIG.unlink(missing_ok=True)
    log(f"lab down in {time.monotonic() - started:.1f}s")


def _remove_run_dir() -> None:
    if not paths.RUN_DIR.exists():
        return
    # Anything still mounted below (a pod volume the kubelet left) must go first.
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for m in sorted((m for m in mounts if m.startswith(str(paths.RUN_DIR))), key=len, reverse=True):
        run(["umount", "-l", m], f"unmount {m}", check=False)
    shutil.rmtree(paths.RUN_DIR, ignore_errors=True)


# ---------------------------------------------------------------- images

def import_image(src: str, dst: str) -> list[str]:
    """Make `src` (an image the lab imported) known under `dst` too, on every node's
    containerd: what mirroring it into a registry would do, for --image-registry runs
    on a lab that has no registry. Returns the nodes it was tagged on."""
    preflight.require_root()
    state = load()
    if not state.procs:
        raise LabError("the lab is down: run `packetwalk lab up`")
    tagged = []
    for n in node_list(state.workers):
        run([str(paths.BIN_DIR / "ctr"), "--address", components.containerd_socket(n),
             "-n", "k8s.io", "images", "tag", "--force", src, dst],
            f"tagging {src} as {dst} on {n.name}")
        tagged.append(n.name)
    return tagged


# ---------------------------------------------------------------- status

def cni_line(name: str) -> str:
    extra = cni_named(name).versions()
    return f"CNI: {name}" + (f" ({extra})" if extra else "")


def families_line(family: str) -> list[str]:
    """`lab status`'s line on the IP families (none on an IPv4 lab, as before)."""
    if t.dual(family):
        return [(f"IP families: dual-stack (IPv4 primary; IPv6 pods in {t.POD_CIDR6}, "
                 f"Services in {t.SERVICE_CIDR6})")]
    if t.ipv6_only(family):
        return [(f"IP families: IPv6 only (pods in {t.POD_CIDR6}, Services in {t.SERVICE_CIDR6}, "
                 f"API server {components.api_server_url(family)}; the underlay keeps its IPv4, "
                 "which no pod, Service or InternalIP uses)")]
    return []


def proxy_line(state: State) -> str:
    if cni_named(state.cni).replaces_kube_proxy:
        return f"kube-proxy: none (Services are translated by the CNI, {state.cni})"
    return f"kube-proxy: {state.proxy_mode} mode"


def status() -> str:
    state = load()
    if not state.procs:
        return "the lab is down"
    lines = [(f"Kubernetes {versions.KUBERNETES}, etcd {versions.ETCD}, containerd {versions.CONTAINERD}, "
              f"CoreDNS {versions.COREDNS}"), cni_line(state.cni), proxy_line(state),
             *families_line(state.ip_family),
             "", "components:"]
    for p in state.procs:
        lines.append(f"  {p.node:18} {p.name:24} pid {p.pid:<8} {'running' if alive(p) else 'DEAD'}")
    try:
        lines += ["", "nodes:", kubectl("get", "nodes", "-o", "wide", timeout=5).rstrip()]
        # The same facts a report gives on any cluster, read from this one.
        lines += ["", "network, as the cluster shows it:",
                  *(f"  {line}" for line in netstatus.lines(kubectl, node_list(state.workers)))]
    except (LabError, subprocess.SubprocessError) as e:
        lines += ["", f"nodes: API server not answering ({e})"]
    if state.faults:
        lines += ["", "active faults: " + ", ".join(state.faults)]
    found = problems(state)
    lines += ["", "health: " + ("healthy" if not found else "NOT healthy"), *(f"  {f}" for f in found)]
    if podsecurity.configured(state.pod_security):
        lines += ["", (f"Pod Security: {state.pod_security} enforced by default, weaker "
                       "namespace labels refused (kube-system exempt)")]
    lines += ["", f"kubeconfig: {paths.KUBECONFIG}"]
    return "\n".join(lines)

