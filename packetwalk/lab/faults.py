"""Break one layer of the lab on purpose, the way a real misconfiguration would.

Each fault stops a component, deletes a route or rule, or changes an interface
setting, and `heal` undoes exactly that. Active faults are recorded in the
lab's state, so `lab status` shows them and `lab down` still cleans up.
What breaks the pod network goes through the lab's CNI (cni/), which says which
faults it supports. What the suite should report for each fault is the
self-check's business (tests/selfcheck/expected.py).
"""

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import cluster, components, journal, network, paths
from . import topology as t
from .cni import Cni, CniFault, cni_named, names
from .errors import LabError
from .processes import enter, in_netns, run, start, stop_component
from .state import State, load

NODEPORTS = "30000:32767"
SMALL_MTU = 1400  # the underlay's MTU under mtu-mismatch; pods still believe 1500


@dataclass(frozen=True)
class Fault:
    name: str
    symptom: str
    per_node: bool  # takes --node (default: the first worker)
    inject: Callable[[State, t.Node], None]
    heal: Callable[[State, t.Node], None]


def _ipt(node: str, *args: str, check: bool = True) -> str:
    return run(in_netns(node) + ["iptables", "-w", *args], f"iptables on {node}", check=check)


def _ipt_ok(node: str, *args: str) -> bool:
    argv = in_netns(node) + ["iptables", "-w", *args]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _cni(state: State) -> Cni:
    return cni_named(state.cni)


# ---------------------------------------------------------------- dns-down

def _dns_down(state: State, node: t.Node) -> None:
    cluster.kubectl("-n", "kube-system", "scale", "deployment/coredns", "--replicas=0")
    cluster.wait_for("CoreDNS pods to be gone", lambda: not cluster.kubectl(
        "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "name").strip(), 60)


def _dns_up(state: State, node: t.Node) -> None:
    cluster.kubectl("-n", "kube-system", "scale", "deployment/coredns", "--replicas=2")
    cluster.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=90s", timeout=100)
    cluster.wait_for("CoreDNS to answer", lambda: cluster.dns_answers(node.name, state.ip_family), 60)


# ---------------------------------------------------------------- dns-policy

# A common way to break DNS: kube-system locked down to itself, and the policy
# selects CoreDNS too. Lookups from every other namespace are then denied.
DNS_POLICY = "coredns-lockdown"
DNS_POLICY_YAML = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {DNS_POLICY}, namespace: kube-system}}
spec:
  podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
"""


def _enforcers_synced(state: State, change: Callable[[], None], what: str) -> None:
    """Make `change`, then wait for every node's enforcer to sync after it (its
    log line), so the suite meets the rules the change means."""
    from .cni._policy import COMPONENT

    logs = {n.name: paths.LOG_DIR / f"{n.name}-{COMPONENT}.log" for n in cluster.node_list(state.workers)}
    logs = {n: f for n, f in logs.items() if f.exists()}
    seen = {n: f.stat().st_size for n, f in logs.items()}
    change()

    def synced() -> bool:
        for node, log in logs.items():
            with log.open("rb") as handle:
                handle.seek(seen[node])
                if ENFORCER_SYNCED.encode() not in handle.read():
                    return False
        return True

    cluster.wait_for(f"kube-router on every node to sync {what}", synced, 60)


def _dns_policy(state: State, node: t.Node) -> None:
    _enforcers_synced(state, lambda: cluster.kubectl("apply", "-f", "-", stdin=DNS_POLICY_YAML),
                      f"kube-system/{DNS_POLICY}")


def _dns_policy_gone(state: State, node: t.Node) -> None:
    _enforcers_synced(state, lambda: cluster.kubectl(
        "-n", "kube-system", "delete", "networkpolicy", DNS_POLICY, "--ignore-not-found"),
        f"the removal of kube-system/{DNS_POLICY}")


# ---------------------------------------------------------------- controller-manager-down

# A control plane that stops working is not the network: the suite must say so
# in one line at session start, naming the component, instead of one error per test.
def _control_plane_down(component: str) -> Callable[[State, t.Node], None]:
    def inject(state: State, node: t.Node) -> None:
        stop_component(state, component, cluster.node_list(state.workers)[0].name)
    return inject


# Their secure ports, on the control plane's loopback (--bind-address=127.0.0.1).
CONTROL_PLANE_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}


def _control_plane_back(component: str) -> Callable[[State, t.Node], None]:
    # The controller-manager's flags depend on the lab's IP family (dual-stack: both ranges).
    argv = {"kube-controller-manager": lambda s: components.kube_controller_manager(s.ip_family),
            "kube-scheduler": lambda s: components.kube_scheduler()}[component]

    def heal(state: State, node: t.Node) -> None:
        cp = cluster.node_list(state.workers)[0].name
        start(state, cp, component, argv(state))
        # The lab runs them without leader election: serving /healthz is acting.
        url = f"https://127.0.0.1:{CONTROL_PLANE_PORTS[component]}/healthz"
        cluster.wait_for(f"the restarted {component} to answer {url}", lambda: run(
            in_netns(cp) + ["curl", "-sk", "-m", "2", url], "curl", check=False).strip() == "ok", 60)
    return heal


# ---------------------------------------------------------------- kube-proxy-broken

def _kube_proxy_broken(state: State, node: t.Node) -> None:
    stop_component(state, "kube-proxy", node.name)
    # What `kube-proxy --cleanup` does on a real node: remove every KUBE- chain.
    run(enter(node.name) + [str(components.BIN / "kube"), "kube-proxy", "--cleanup",
                            f"--config={paths.node_dir(node.name) / 'kube-proxy.yaml'}"],
        f"kube-proxy --cleanup on {node.name}", check=False)


# Programmed means the Services' rules are in, not just kube-proxy's chains: a restarted
# iptables kube-proxy creates KUBE-SERVICES and its jumps one iptables call at a time and
# only then restores the rules in one batch. Under load that gap was ~1 s, and a heal
# journaled on the empty chain came that much before the ClusterIP answered again (CI,
# test_watch). The default/kubernetes Service always has an endpoint, so a synced node
# always holds at least one Service's rule; each sync writes them all at once.
def _kube_proxy_programmed(state: State, node: t.Node) -> bool:
    if state.proxy_mode == "nftables":
        ips = run(in_netns(node.name) + ["nft", "list", "map", "ip", "kube-proxy", "service-ips"],
                  "nft", check=False)
        return "elements = {" in ips
    return "-j KUBE-SVC-" in _ipt(node.name, "-t", "nat", "-S", "KUBE-SERVICES", check=False)


def _kube_proxy_back(state: State, node: t.Node) -> None:
    start(state, node.name, "kube-proxy", components.kube_proxy(node))
    cluster.wait_for(f"kube-proxy on {node.name} to program Services",
                     lambda: _kube_proxy_programmed(state, node), 30, 0.2)  # 0.2: the journal's heal instant


# ---------------------------------------------------------------- cross-node-route

# How the other nodes reach a node's pods is the CNI's: a static route on bridge.
def _drop_pod_route(state: State, node: t.Node) -> None:
    _cni(state).cut_off(cluster.node_list(state.workers), cluster.pod_cidrs(), node)


def _restore_pod_routes(state: State, node: t.Node) -> None:
    _cni(state).reconnect(cluster.node_list(state.workers), cluster.pod_cidrs(), node)


# ---------------------------------------------------------------- cross-node-route-ipv6

# The same cut for one family: on a dual-stack lab, the other nodes lose their IPv6
# route to the node's pods (its spec.podCIDRs' IPv6 /64) and keep the IPv4 one, as
# after a route push that covered one family. cross-node-route on that lab cuts the
# IPv4 route (spec.podCIDR is the IPv4 one) and leaves IPv6 alone.
def _drop_pod_route6(state: State, node: t.Node) -> None:
    _cni(state).cut_off(cluster.node_list(state.workers), cluster.pod_cidrs(), node,
                        cluster.pod_cidrs6(), family="ipv6")


def _restore_pod_routes6(state: State, node: t.Node) -> None:
    _cni(state).reconnect(cluster.node_list(state.workers), cluster.pod_cidrs(), node,
                          cluster.pod_cidrs6(), family="ipv6")


# ---------------------------------------------------------------- egress-masquerade

def _no_masquerade(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _ipt(n.name, "-t", "nat", "-D", "POSTROUTING", "-s", str(t.POD_CIDR), "-j", "PW-MASQ", check=False)


def _masquerade(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        network.masquerade_to_outside(n.name)


# ---------------------------------------------------------------- policy-enforcer-down

# The CNI's agents are the enforcer (kube-router, on bridge).
def _enforcer_down(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _cni(state).stop(state, n)


def _enforcer_up(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _cni(state).start(state, n)


# A firewall rule a fault adds: (table, chain, match..., target).
Rule = tuple[str, ...]


def _insert(node: str, rule: Rule) -> None:
    table, chain, *spec = rule
    _ipt(node, "-t", table, "-I", chain, *spec)


def _delete(node: str, rule: Rule) -> None:
    table, chain, *spec = rule
    while _ipt_ok(node, "-t", table, "-D", chain, *spec):
        pass


# ---------------------------------------------------------------- nodeport-blocked

# A stateful firewall in front of the node, in mangle PREROUTING (before
# kube-proxy's DNAT): only NEW flows to the node's own addresses. Matching
# the port alone also dropped answers whose masqueraded (--random-fully)
# source port happened to fall in the NodePort range: a flaky false failure.
def _nodeport_drop(proto: str) -> Rule:
    return ("mangle", "PREROUTING", "-p", proto, "--dport", NODEPORTS, "-m", "addrtype",
            "--dst-type", "LOCAL", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP")


NODEPORT_DROPS: tuple[Rule, ...] = tuple(_nodeport_drop(proto) for proto in ("tcp", "udp"))


def _block_nodeports(state: State, node: t.Node) -> None:
    for rule in NODEPORT_DROPS:
        _insert(node.name, rule)


def _unblock_nodeports(state: State, node: t.Node) -> None:
    for rule in NODEPORT_DROPS:
        _delete(node.name, rule)


# nodeport-udp-blocked: the same firewall for UDP alone, as a security group that
# opens 30000-32767 for TCP only leaves it. The verdict must name the one node
# and the one protocol (issue 13: it once read "on every placement").
def _block_udp_nodeports(state: State, node: t.Node) -> None:
    _insert(node.name, _nodeport_drop("udp"))


def _unblock_udp_nodeports(state: State, node: t.Node) -> None:
    _delete(node.name, _nodeport_drop("udp"))


# ---------------------------------------------------------------- udp-dropped

# mangle PREROUTING: before kube-router's filter chains (which accept policy-allowed
# pod traffic ahead of anything in FORWARD) and before the node's INPUT.
UDP_DROP: Rule = ("mangle", "PREROUTING", "-p", "udp", "-s", str(t.POD_CIDR), "-j", "DROP")


def _drop_udp(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _insert(n.name, UDP_DROP)


def _pass_udp(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _delete(n.name, UDP_DROP)


# ---------------------------------------------------------------- udp-lossy

# A lossy path for the run's own UDP (its servers' port 8081): half the datagrams
# to pods are dropped at random, as a congested link or an overloaded policer would.
# mangle FORWARD, after kube-proxy's DNAT (a Service's datagram counts as its
# backend's) and before kube-router's filter chains; on the node hosting the pod
# only (its pod CIDR), so a cross-node datagram faces the loss once. DNS (53) and
# TCP are untouched: the lossy layer is the only one.
LOSS = "0.5"


def _lossy_rule(cidr: str) -> Rule:
    return ("mangle", "FORWARD", "-p", "udp", "-d", cidr, "--dport", "8081", "-m", "statistic",
            "--mode", "random", "--probability", LOSS, "-j", "DROP")


def _lossy_udp(state: State, node: t.Node) -> None:
    cidrs = cluster.pod_cidrs()
    for n in cluster.node_list(state.workers):
        _insert(n.name, _lossy_rule(cidrs[n.name]))


def _whole_udp(state: State, node: t.Node) -> None:
    cidrs = cluster.pod_cidrs()
    for n in cluster.node_list(state.workers):
        _delete(n.name, _lossy_rule(cidrs[n.name]))


# ---------------------------------------------------------------- mtu-mismatch

# raw OUTPUT: the node's own ICMP errors are RELATED traffic, and kube-router's
# filter OUTPUT chain (always first) accepts them before any filter rule of ours.
FRAG_NEEDED_DROP: Rule = ("raw", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed",
                          "-j", "DROP")


def _mtu_small(state: State, node: t.Node) -> None:
    # Each node's link to the fabric is smaller than the pods' interfaces, and a
    # firewall eats ICMP "fragmentation needed": the classic PMTU black hole.
    # The nodes' own TCP (API server, kubelets) still works: its MSS follows
    # eth0's MTU. Pod packets above it, with DF set, vanish without a word.
    for n in cluster.node_list(state.workers):
        network.ip("link", "set", "eth0", "mtu", str(SMALL_MTU), ns=n.name)
        _insert(n.name, FRAG_NEEDED_DROP)


def _mtu_back(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        network.ip("link", "set", "eth0", "mtu", "1500", ns=n.name)
        _delete(n.name, FRAG_NEEDED_DROP)


# ---------------------------------------------------------------- hairpin-off

def _hairpin(state: State, on: bool) -> None:
    _cni(state).set_hairpin(cluster.node_list(state.workers), cluster.pod_cidrs(), on)


# ---------------------------------------------------------------- policy-ignores-except / -named-ports

# kube-router v2.1.0 looks `ipset` and `iptables-restore` up on its PATH each time
# it programs (exec.LookPath, pkg/utils). These faults restart it with a directory
# first on that PATH holding a filter in front of one of them: the enforcer then
# programs a rule set that misses one semantic, as a release with that bug would,
# while everything else it enforces stays right. Heal restarts it plainly; its
# first sync rebuilds every set (restore and swap) and every rule.
SHIM_ROOT = paths.RUN_DIR / "policy-shims"
ENFORCER_SYNCED = "sync iptables took"  # kube-router's log line (--v=1) after each sync


def ignore_except(restore: str) -> str:
    """`ipset restore` input without its nomatch flags. kube-router writes an ipBlock's
    except entries into the CIDR's hash:net set flagged nomatch; unflagged, an excepted
    address matches like the rest of the CIDR: admitted."""
    out = []
    for line in restore.splitlines():
        words = line.split()
        if words[:1] == ["add"] and "nomatch" in words:
            line = " ".join(word for word in words if word != "nomatch")
        out.append(line)
    return "\n".join(out) + ("\n" if restore.endswith("\n") else "")


def ignore_named_ports(rules: str) -> str:
    """`iptables-restore` input without the rules kube-router makes for named ports: a
    rule whose destination set is one of its policy's named-port sets. kube-router names
    those sets from namespace, policy, direction, rule and port index (policy.go,
    policyIndexed{Ingress,Egress}NamedPortIPSetName), the policy and namespace are in
    the rule's comment; numeric-port rules match the policy's pod sets instead."""
    import base64
    import hashlib
    import re

    def named_port_set(namespace: str, policy: str, direction: str, rule: int, port: int) -> str:
        text = f"{namespace}{policy}{direction}{rule}{port}IPv4namedport"
        return "KUBE-DST-" + base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]

    out = []
    for line in rules.splitlines():
        owner = re.search(r'policy name:? (\S+) namespace ([^\s"]+)', line)
        target = re.search(r"--match-set (\S+) dst", line)
        if owner and target and target[1] in {
                named_port_set(owner[2], owner[1], direction, rule, port)
                for direction in ("ingressrule", "egressrule")
                for rule in range(8) for port in range(8)}:
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if rules.endswith("\n") else "")


def shim_script(tool: str, rewrite: Callable[[str], str], when: str) -> str:
    """A stand-alone Python program that runs the real `tool` (next on PATH) with its
    stdin passed through `rewrite` when its first argument is `when` ("" always)."""
    import inspect

    return "\n".join([
        "#!/usr/bin/env python3",
        f"# packetwalk lab fault: {tool} through {rewrite.__name__} (removed by `lab heal`)",
        "import os, shutil, subprocess, sys",
        "from collections.abc import Callable",
        inspect.getsource(rewrite),
        "here = os.path.dirname(os.path.abspath(__file__))",
        ("rest = os.pathsep.join(p for p in os.environ.get('PATH', '').split(os.pathsep)"
         " if os.path.abspath(p) != here)"),
        f"real = shutil.which({tool!r}, path=rest)",
        f"if {when!r} == '' or sys.argv[1:2] == [{when!r}]:",
        (f"    done = subprocess.run([real, *sys.argv[1:]], input={rewrite.__name__}"
         "(sys.stdin.read()), text=True)"),
        "    sys.exit(done.returncode)",
        "os.execv(real, [real, *sys.argv[1:]])",
        ""])


# fault name -> (tool, rewrite, first argument that gets rewritten, "" = always)
ENFORCER_SHIMS: dict[str, tuple[str, Callable[[str], str], str]] = {
    "policy-ignores-except": ("ipset", ignore_except, "restore"),
    "policy-ignores-named-ports": ("iptables-restore", ignore_named_ports, ""),
}


def _restart_enforcer(state: State, node: t.Node, path_first: Path | None) -> None:
    """Restart kube-router on `node` (with `path_first` ahead on its PATH) and wait for
    its first full sync, so the suite meets the rules this fault means."""
    from .cni._policy import COMPONENT, kube_router

    stop_component(state, COMPONENT, node.name)
    log = paths.LOG_DIR / f"{node.name}-{COMPONENT}.log"
    seen = log.stat().st_size if log.exists() else 0
    argv = kube_router(node, state.ip_family)
    if path_first is not None:
        argv = ["env", f"PATH={path_first}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
                *argv]
    start(state, node.name, COMPONENT, argv)

    def synced() -> bool:
        with log.open("rb") as handle:
            handle.seek(seen)
            return ENFORCER_SYNCED.encode() in handle.read()

    cluster.wait_for(f"kube-router on {node.name} to sync its rules", synced, 60)


def _enforcer_shimmed(name: str) -> Callable[[State, t.Node], None]:
    def inject(state: State, node: t.Node) -> None:
        tool, rewrite, when = ENFORCER_SHIMS[name]
        shims = SHIM_ROOT / name
        shims.mkdir(parents=True, exist_ok=True)
        script = shims / tool
        script.write_text(shim_script(tool, rewrite, when))
        script.chmod(0o755)
        for n in cluster.node_list(state.workers):
            _restart_enforcer(load(), n, shims)
    return inject


def _enforcer_plain(state: State, node: t.Node) -> None:
    for n in cluster.node_list(state.workers):
        _restart_enforcer(load(), n, None)
    shutil.rmtree(SHIM_ROOT, ignore_errors=True)


FAULTS = {f.name: f for f in (
    Fault("dns-down", "cluster DNS stops answering (CoreDNS scaled to zero)", False, _dns_down, _dns_up),
    Fault("kube-proxy-broken", "kube-proxy stopped and its rules removed on one node", True,
          _kube_proxy_broken, _kube_proxy_back),
    Fault("cross-node-route", "the route to one node's pod CIDR is removed from the other nodes", True,
          _drop_pod_route, _restore_pod_routes),
    Fault("cross-node-route-ipv6", "the route to one node's IPv6 pod CIDR is removed from the other "
          "nodes; IPv4 routes stay (dual-stack labs only)", True, _drop_pod_route6, _restore_pod_routes6),
    Fault("egress-masquerade", "nodes stop masquerading pod traffic that leaves the cluster", False,
          _no_masquerade, _masquerade),
    Fault("policy-enforcer-down", "kube-router stopped and its rules removed: policies not enforced", False,
          _enforcer_down, _enforcer_up),
    Fault("nodeport-blocked", "NodePort traffic dropped on one node (a firewall in front of it)", True,
          _block_nodeports, _unblock_nodeports),
    Fault("nodeport-udp-blocked", "UDP NodePorts dropped on one node, TCP ones pass (a firewall "
          "open for TCP only)", True, _block_udp_nodeports, _unblock_udp_nodeports),
    Fault("udp-dropped", "pod UDP is dropped while TCP passes", False, _drop_udp, _pass_udp),
    Fault("udp-lossy", f"half of the run's UDP datagrams between pods are lost at random "
          f"(probability {LOSS}); DNS and TCP pass", False, _lossy_udp, _whole_udp),
    Fault("mtu-mismatch", f"node links are {SMALL_MTU} while pods believe 1500, and ICMP frag-needed is dropped",
          False,
          _mtu_small, _mtu_back),
    Fault("hairpin-off", "pods can no longer reach themselves through their Service", False,
          lambda s, n: _hairpin(s, False), lambda s, n: _hairpin(s, True)),
    Fault("policy-ignores-except", "kube-router programs ipBlock except entries as allowed "
          "(its ipset restores lose the nomatch flag)", False,
          _enforcer_shimmed("policy-ignores-except"), _enforcer_plain),
    Fault("dns-policy", f"a NetworkPolicy in kube-system ({DNS_POLICY}) selects CoreDNS and admits "
          "kube-system only: lookups from every other namespace are denied", False,
          _dns_policy, _dns_policy_gone),
    Fault("controller-manager-down", "kube-controller-manager stopped: new namespaces get no "
          "ServiceAccount, Services no endpoints", False,
          _control_plane_down("kube-controller-manager"), _control_plane_back("kube-controller-manager")),
    Fault("scheduler-down", "kube-scheduler stopped: new pods are never scheduled", False,
          _control_plane_down("kube-scheduler"), _control_plane_back("kube-scheduler")),
    Fault("policy-ignores-named-ports", "kube-router leaves out the rules for named ports "
          "(its iptables restores lose them): what a named port allows stays closed", False,
          _enforcer_shimmed("policy-ignores-named-ports"), _enforcer_plain),
)}


def _own(fault: CniFault) -> Fault:
    """A CNI's own fault as the lab's faults are: the nodes and pod CIDRs looked up."""
    def call(step: Callable[..., None]) -> Callable[[State, t.Node], None]:
        return lambda state, node: step(state, cluster.node_list(state.workers), cluster.pod_cidrs(), node)

    return Fault(fault.name, fault.symptom, fault.per_node, call(fault.inject), call(fault.heal))


def faults_for(net: Cni) -> dict[str, Fault]:
    """The lab's faults plus the CNI's own (bgp-down on kube-router)."""
    return {**FAULTS, **{f.name: _own(f) for f in net.own_faults}}


def all_names() -> set[str]:
    return set(FAULTS) | {f.name for name in names() for f in cni_named(name).own_faults}


def _node(state: State, name: str | None) -> t.Node:
    lab_nodes = cluster.node_list(state.workers)
    if name is None:
        return lab_nodes[1]
    for n in lab_nodes:
        if n.name == name:
            return n
    raise LabError(f"no lab node named {name!r}; nodes: {', '.join(n.name for n in lab_nodes)}")


# The faults an IPv6-only lab takes: those that break the same thing in any family.
# The others are written for IPv4 (iptables rules on 10.244.0.0/16, ICMP
# fragmentation-needed, kube-proxy's IPv4 chains, kube-router's iptables-restore) and
# would break nothing there; they are refused rather than pass for injected.
IPV6_ONLY_FAULTS = frozenset({"dns-down", "controller-manager-down", "scheduler-down",
                              "cross-node-route", "hairpin-off", "policy-enforcer-down"})


# The faults that break one family of a dual-stack lab, and nothing on another lab:
# on IPv4 there is no IPv6 route to cut; on IPv6-only, cross-node-route cuts it.
DUAL_ONLY_FAULTS = frozenset({"cross-node-route-ipv6"})


def check_family(name: str, family: str) -> None:
    if name in DUAL_ONLY_FAULTS and not t.dual(family):
        other = ("on an IPv6-only lab, cross-node-route cuts the IPv6 route" if t.ipv6_only(family)
                 else "an IPv4 lab has no IPv6 route to cut")
        raise LabError(f"fault {name} needs a dual-stack lab (`packetwalk lab up --ip-family dual`); "
                       f"{other}")
    if t.ipv6_only(family) and name not in IPV6_ONLY_FAULTS:
        raise LabError(f"fault {name}: not built for an IPv6-only lab yet; it takes "
                       f"{', '.join(sorted(IPV6_ONLY_FAULTS))} (docs/ipv6.md)")


def inject(name: str, node: str | None = None) -> str:
    state = load()
    if not state.procs:
        raise LabError("the lab is down: run `packetwalk lab up` first")
    if name not in all_names():
        raise LabError(f"unknown fault {name!r}; `packetwalk lab fault --list` shows them")
    if state.faults:
        # One at a time: two faults together would blur which layer each one breaks.
        raise LabError(f"fault {', '.join(state.faults)} is already active; `packetwalk lab heal` first")
    if name not in _cni(state).faults_supported:
        raise LabError(f"fault {name} does not apply to the {state.cni} CNI")
    check_family(name, state.ip_family)
    fault = faults_for(_cni(state))[name]
    target = _node(state, node)
    if node is not None and not fault.per_node:
        raise LabError(f"fault {name} is cluster-wide; it takes no --node")
    fault.inject(state, target)
    journal.record("injected", name, target.name if fault.per_node else "")
    symptom = _cni(state).fault_symptoms.get(name, fault.symptom)
    state = load()  # inject may have started or stopped processes
    state.faults[name] = {"node": target.name if fault.per_node else ""}
    state.save()
    return f"{name}: {symptom}" + (f" [{target.name}]" if fault.per_node else "")


def heal() -> list[str]:
    state = load()
    healed = []
    for name, info in list(state.faults.items()):
        faults_for(_cni(state))[name].heal(state, _node(state, info.get("node") or None))
        journal.record("healed", name, info.get("node") or "")
        state = load()
        state.faults.pop(name, None)
        state.save()
        healed.append(name)
    if healed:
        # A heal restores its layer; what it disturbed on the way (a CoreDNS pod
        # that lost the API server, EndpointSlices behind a restarted controller)
        # may take longer. Return a whole lab, or say what is still wrong.
        try:
            cluster.wait_for("the lab to be healthy after healing " + ", ".join(healed),
                             lambda: not cluster.problems(load()), 120, 2)
        except LabError:
            raise LabError(f"healed {', '.join(healed)}, but the lab is not healthy after 120s: "
                           + "; ".join(cluster.problems(load()))) from None
    return healed


def catalogue() -> str:
    """The faults the running lab's CNI supports; with the lab down, every fault
    and the CNIs it applies to."""
    state = load()

    def line(f: Fault, symptom: str, tail: str = "") -> str:
        return f"{f.name:24} {'--node ' if f.per_node else '       '} {symptom}{tail}"

    if state.procs:
        net = _cni(state)
        shown = [f for n, f in faults_for(net).items() if n in net.faults_supported]
        return "\n".join([f"faults on the {net.name} CNI (the lab's):",
                          *(line(f, net.fault_symptoms.get(f.name, f.symptom)) for f in shown)])
    nets = [cni_named(n) for n in names()]
    every = {}
    for net in nets:
        every.update(faults_for(net))
    return "\n".join(["the lab is down; every fault, and the CNIs it applies to:", *(
        line(f, f.symptom, f" [{', '.join(n.name for n in nets if f.name in n.faults_supported)}]")
        for f in every.values())])
