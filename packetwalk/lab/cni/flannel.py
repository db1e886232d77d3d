"""flannel: flanneld on every node as its DaemonSet runs it (VXLAN backend,
subnet leases from the Node objects' podCIDR through the Kubernetes API), the
pod network configured from its subnet.env as flannel's CNI plugin does (it
delegates to the bridge plugin), and kube-router firewall-only beside it for
NetworkPolicy, which flannel does not enforce (the canal-like pairing).

flannel's CNI plugin is not on the module proxy, so the lab writes the
delegate's configuration itself, once flanneld has written subnet.env.
No routes between nodes are written: flanneld programs flannel.1, its FDB and
neighbour entries and the routes through it.

Dual-stack (lab up --cni flannel --ip-family dual): net-conf.json gets EnableIPv6
and IPv6Network, as upstream's dual-stack manifest sets them; flanneld then leases
the Node's IPv6 podCIDR too, writes FLANNEL_IPV6_SUBNET, and tunnels IPv6 in a
second VXLAN device (flannel-v6.1) over the nodes' IPv6 addresses. The delegate
gets both range sets. IPv6-only is not offered: flannel's docs give it, but it
has not been built here.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from pathlib import Path
from typing import ClassVar

from .. import build, paths, versions
from .. import topology as t
from ..components import BIN, admin_kubeconfig
from ..errors import LabError
from ..processes import alive, check_running, in_netns, run, start, stop_component
from ..state import State
from . import Cni, CniFault
from ._policy import COMPONENT as ENFORCER
from ._policy import start_enforcer, stop_enforcer
from .bridge import BRIDGE, hairpin_ports

AGENT = "flanneld"
# Where the DaemonSet mounts them; private per node (nodes.PRIVATE_PATHS).
NET_CONF = "/etc/kube-flannel/net-conf.json"
SUBNET_ENV = "/run/flannel/subnet.env"
CONFLIST = "10-flannel.conflist"
NETWORK_NAME = "cbr0"  # upstream's cni-conf.json
VXLAN_DEVICE = "flannel.1"
VXLAN_DEVICE6 = "flannel-v6.1"  # a dual-stack lab's IPv6 tunnel
VXLAN_PORT = 8472  # the kernel's default, which flannel's VXLAN backend keeps
VXLAN_OVERHEAD = 50
SUBNET_ENV_WAIT = 60.0
SUBNET_ENV_KEYS = ("FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ")


def net_conf(network: IPv4Network = t.POD_CIDR, vxlan_port: int | None = None,
             network6: IPv6Network | None = None) -> str:
    """The DaemonSet's net-conf.json (its ConfigMap), for the lab's pod CIDR (and a
    dual-stack lab's IPv6 one). A VXLAN port other than the kernel's default is an
    upgrade's changed setting."""
    backend: dict[str, object] = {"Type": "vxlan"}
    if vxlan_port is not None:
        backend["Port"] = vxlan_port
    conf: dict[str, object] = {"Network": str(network), "EnableNFTables": False}
    if network6 is not None:
        conf.update({"EnableIPv6": True, "IPv6Network": str(network6)})
    return json.dumps({**conf, "Backend": backend}, indent=1)


def lab_net_conf(family: str, vxlan_port: int | None = None) -> str:
    """net_conf for a lab of `family` (dual: both networks)."""
    return net_conf(vxlan_port=vxlan_port, network6=t.POD_CIDR6 if t.dual(family) else None)


def env(node: t.Node) -> dict[str, str]:
    """What the DaemonSet's pod spec sets. NODE_NAME is what a pod-less flanneld needs
    to find its Node (a pod would be looked up by POD_NAME instead)."""
    return {"NODE_NAME": node.name, "POD_NAMESPACE": "kube-flannel",
            "EVENT_QUEUE_DEPTH": "5000", "CONT_WHEN_CACHE_NOT_READY": "false"}


def binary(version: str = versions.FLANNEL) -> str:
    """The pinned flanneld, or an upgrade's beside it (build.flannel_at)."""
    return AGENT if version == versions.FLANNEL else f"{AGENT}-{version}"


def flanneld(node: t.Node, version: str = versions.FLANNEL) -> list[str]:
    # `env` carries the DaemonSet's variables through nsenter into the node.
    return ["env", *(f"{k}={v}" for k, v in env(node).items()),
            str(BIN / binary(version)), "--ip-masq", "--kube-subnet-mgr", f"--kubeconfig-file={admin_kubeconfig()}",
            "--iface=eth0", f"--net-config-path={NET_CONF}"]


@dataclass(frozen=True)
class SubnetEnv:
    network: IPv4Network
    subnet: IPv4Interface  # the node's gateway address on its lease, e.g. 10.244.1.1/24
    mtu: int
    ipmasq: bool
    # With EnableIPv6: FLANNEL_IPV6_NETWORK and the node's IPv6 lease (its gateway).
    network6: IPv6Network | None = None
    subnet6: IPv6Interface | None = None


def parse_subnet_env(text: str, where: str = SUBNET_ENV) -> SubnetEnv:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    missing = [k for k in SUBNET_ENV_KEYS if k not in values]
    if missing:
        raise LabError(f"{where} lacks {', '.join(missing)}")
    six = [k for k in ("FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET") if k in values]
    if len(six) == 1:
        raise LabError(f"{where} has {six[0]} without the other IPv6 key")
    try:
        env = SubnetEnv(IPv4Network(values["FLANNEL_NETWORK"]), IPv4Interface(values["FLANNEL_SUBNET"]),
                        int(values["FLANNEL_MTU"]), _bool(values["FLANNEL_IPMASQ"]),
                        *((IPv6Network(values["FLANNEL_IPV6_NETWORK"]),
                           IPv6Interface(values["FLANNEL_IPV6_SUBNET"])) if six else ()))
    except ValueError as e:
        raise LabError(f"{where} has a bad value: {e}") from None
    if not env.subnet.network.subnet_of(env.network) or env.mtu < 576:
        raise LabError(f"{where}: subnet {env.subnet} outside {env.network} or MTU {env.mtu} too small")
    if env.subnet6 is not None and not env.subnet6.network.subnet_of(env.network6):
        raise LabError(f"{where}: IPv6 subnet {env.subnet6} outside {env.network6}")
    return env


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"FLANNEL_IPMASQ {text!r} is neither true nor false")
    return text == "true"


def conflist(env: SubnetEnv, hairpin: bool = True) -> str:
    """What flannel's CNI plugin hands the bridge plugin, from subnet.env and the
    delegate in upstream's cni-conf.json (hairpinMode, isDefaultGateway)."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True,
                # The plugin masquerades only when flanneld does not (--ip-masq).
                "ipMasq": not env.ipmasq, "hairpinMode": hairpin, "mtu": env.mtu,
                "ipam": {"type": "host-local", "ranges": _ranges(env), "routes": _routes(env)},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=1)


def _ranges(env: SubnetEnv) -> list[list[dict[str, str]]]:
    # One range set per family: host-local gives each pod an address from each.
    return [[{"subnet": str(env.subnet.network)}]] + (
        [[{"subnet": str(env.subnet6.network)}]] if env.subnet6 is not None else [])


def _routes(env: SubnetEnv) -> list[dict[str, str]]:
    # What flannel's CNI plugin adds: the whole flannel network of each family via
    # the bridge (the default routes come from isDefaultGateway).
    return [{"dst": str(env.network)}] + ([{"dst": str(env.network6)}] if env.network6 else [])


def host_path(node: t.Node, inside: str) -> Path:
    """A path of the node's private mounts, as seen from the host."""
    return paths.node_dir(node.name) / "root" / inside.lstrip("/")


def read_subnet_env(node: t.Node) -> SubnetEnv:
    f = host_path(node, SUBNET_ENV)
    return parse_subnet_env(f.read_text(), f"{SUBNET_ENV} of {node.name}")


def _write_conflist(node: t.Node, hairpin: bool = True) -> None:
    netd = paths.cni_conf_dir(node.name)
    netd.mkdir(parents=True, exist_ok=True)
    (netd / CONFLIST).write_text(conflist(read_subnet_env(node), hairpin=hairpin))


def _running(state: State, name: str, node: t.Node) -> bool:
    return any(p.name == name and p.node == node.name and alive(p) for p in state.procs)


def _await_subnet_env(state: State, node: t.Node) -> None:
    """flanneld writes subnet.env once it holds its lease and flannel.1 is up."""
    proc = next(p for p in reversed(state.procs) if p.name == AGENT and p.node == node.name)
    deadline = time.monotonic() + SUBNET_ENV_WAIT
    while not host_path(node, SUBNET_ENV).exists():
        check_running(proc)  # names the node and the log when flanneld exits
        if time.monotonic() > deadline:
            log = paths.LOG_DIR / f"{node.name}-{AGENT}.log"
            raise LabError(f"{AGENT} on {node.name} wrote no {SUBNET_ENV} within {SUBNET_ENV_WAIT:.0f}s "
                           f"(log: {log})")
        time.sleep(0.5)


NODE_READY_WAIT = 60.0


def _await_ready(node: t.Node) -> None:
    """The Node's Ready condition, as the API server has it."""
    from ..cluster import kubectl  # the lab's kubectl: the admin kubeconfig
    deadline = time.monotonic() + NODE_READY_WAIT
    while True:
        out = kubectl("get", "node", node.name, "-o",
                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        if out.strip() == "True":
            return
        if time.monotonic() > deadline:
            raise LabError(f"node {node.name} not Ready {NODE_READY_WAIT:.0f}s after flanneld started "
                           f"(log: {paths.LOG_DIR / f'{node.name}-{AGENT}.log'})")
        time.sleep(1)


# The VXLAN packets arriving at a node, before anything else sees them. A dual-stack
# lab's IPv6 tunnel (flannel-v6.1) runs over the nodes' IPv6 addresses, on the same
# port: ip6tables drops that family's alone.
def _vxlan_drop(op: str, family: str = "ipv4") -> list[str]:
    tool = "ip6tables" if family == "ipv6" else "iptables"
    return [tool, "-w", "-t", "raw", op, "PREROUTING", "-i", "eth0", "-p", "udp",
            "--dport", str(VXLAN_PORT), "-j", "DROP"]


def _running_version(state: State) -> str:
    """The flanneld version the lab runs (the first named, after a partial upgrade)."""
    return state.cni_version.split()[0] if state.cni_version else versions.FLANNEL


def _start_agent(state: State, node: t.Node, version: str) -> None:
    """flanneld started on the node, up once it holds its lease: a fresh subnet.env
    (a stale one, left by an agent that was stopped, is removed first), then the
    CNI config written from it."""
    host_path(node, SUBNET_ENV).unlink(missing_ok=True)
    start(state, node.name, AGENT, flanneld(node, version))
    _await_subnet_env(state, node)
    _write_conflist(node)


def _vtep_mac(node: t.Node) -> str:
    """flannel.1's MAC on the node ('' without the device): the VTEP address the
    other nodes' FDB must point at, published in the Node's backend-data."""
    # `ip`, not /sys/class/net: entering only the node's network namespace keeps the
    # host's /sys, which lists the host's devices.
    r = subprocess.run(in_netns(node.name) + ["ip", "-o", "link", "show", VXLAN_DEVICE],
                       capture_output=True, text=True, check=False)
    words = r.stdout.split()
    return words[words.index("link/ether") + 1] if r.returncode == 0 and "link/ether" in words else ""


def _fdb_macs(node: t.Node) -> str:
    return run(in_netns(node.name) + ["bridge", "fdb", "show", "dev", VXLAN_DEVICE],
               f"reading {VXLAN_DEVICE}'s FDB on {node.name}", check=False)


FLANNELD_WAIT = 60.0


def _flanneld_down(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    """flanneld stopped on one node and its flannel.1 gone, as after a reboot when
    the agent's pod cannot start: the node's routes through the tunnel go with the
    device, and the VXLAN packets the other nodes still send it find no listener.
    Pods keep running, with their addresses and the bridge."""
    stop_component(state, AGENT, node.name)
    run(in_netns(node.name) + ["ip", "link", "del", VXLAN_DEVICE], f"deleting {VXLAN_DEVICE} on {node.name}")
    if t.dual(state.ip_family):
        run(in_netns(node.name) + ["ip", "link", "del", VXLAN_DEVICE6],
            f"deleting {VXLAN_DEVICE6} on {node.name}")


def _flanneld_up(state: State, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node) -> None:
    """flanneld started again: it makes a new flannel.1 (a new MAC), publishes it on
    its Node, and the other nodes' agents rewrite their FDB entries for it."""
    _start_agent(state, node, _running_version(state))
    deadline = time.monotonic() + FLANNELD_WAIT
    others = [n for n in nodes if n.name != node.name]
    while not (mac := _vtep_mac(node)) or any(mac not in _fdb_macs(n) for n in others):
        if time.monotonic() > deadline:
            raise LabError(f"the other nodes' {VXLAN_DEVICE} FDB has no entry for {node.name}'s new VTEP "
                           f"({mac or 'no device'}) {FLANNELD_WAIT:.0f}s after flanneld started "
                           f"(logs: {paths.LOG_DIR}/<node>-{AGENT}.log)")
        time.sleep(1)


class Flannel(Cni):
    name = "flannel"
    builds = ("flannel", "kube-router")
    ip_families = ("ipv4", "dual")  # IPv6-only is not built (the module's docstring)
    # Left out, each for a reason:
    #  egress-masquerade: flanneld --ip-masq masquerades pod egress itself (and
    #    re-adds its rules every 5s), so removing the lab's PW-MASQ breaks nothing.
    #  mtu-mismatch: shrinking eth0 under flannel.1 makes the kernel fragment the
    #    VXLAN packets (outer DF unset) or learn a smaller PMTU: not the black hole
    #    the self-check expects, and not measured yet.
    #  (cross-node-route drops the IPv4 VXLAN packets into the node; on a dual-stack
    #  lab cross-node-route-ipv6 drops the IPv6 tunnel's, flannel-v6.1's, alone.)
    faults_supported = frozenset({
        "dns-down", "dns-policy", "controller-manager-down", "scheduler-down",
        "kube-proxy-broken", "cross-node-route", "cross-node-route-ipv6", "policy-enforcer-down",
        "nodeport-blocked", "nodeport-udp-blocked", "udp-dropped", "udp-lossy", "hairpin-off", "policy-ignores-except",
        "policy-ignores-named-ports", "flanneld-down"})
    own_faults = (CniFault(
        "flanneld-down", f"flanneld stopped on one node and its {VXLAN_DEVICE} gone (a reboot the agent "
        "did not come back from): the tunnel to and from its pods is down", True,
        _flanneld_down, _flanneld_up),)
    upgrades = (versions.FLANNEL, versions.FLANNEL_UPGRADE)
    fault_symptoms: ClassVar[dict[str, str]] = {
        "cross-node-route": f"VXLAN (UDP {VXLAN_PORT}) into one node is dropped: the other nodes "
                            "lose their way to its pods",
        "cross-node-route-ipv6": f"on a dual-stack lab, the IPv6 tunnel's VXLAN ({VXLAN_DEVICE6}, UDP "
                                 f"{VXLAN_PORT} over IPv6) into one node is dropped: the other nodes "
                                 "lose their IPv6 way to its pods and keep the IPv4 one"}

    def configure_node(self, node: t.Node, pod_cidr: str, pod_cidr6: str | None = None) -> None:
        # The lease is the Node's podCIDR (and a dual-stack lab's IPv6 one in
        # podCIDRs), which flanneld reads itself; the CNI config waits for its
        # subnet.env (start).
        f = host_path(node, NET_CONF)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(lab_net_conf("dual" if pod_cidr6 else "ipv4"))

    def after_cidrs(self, nodes: list[t.Node], cidrs: dict[str, str],
                    cidrs6: dict[str, str] | None = None) -> None:
        """Nothing: flanneld learns the other nodes' leases and routes to them."""

    def start(self, state: State, node: t.Node) -> None:
        """flanneld, then the CNI config from its subnet.env, then the enforcer;
        each only if it is not running (policy-enforcer-down's heal restarts the enforcer)."""
        if not _running(state, AGENT, node):
            _start_agent(state, node, versions.FLANNEL)
        if not _running(state, ENFORCER, node):
            start_enforcer(state, node)

    def stop(self, state: State, node: t.Node) -> None:
        """The enforcer only: flanneld is the pod network itself."""
        stop_enforcer(state, node)

    def cut_off(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node,
                cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        # flanneld would re-add a deleted route or FDB entry on its next lease event;
        # a firewall dropping the tunnel stays. Without a family: the IPv4 tunnel (a
        # dual-stack lab's cross-node-route cuts IPv4 and leaves IPv6, as on bridge).
        run(in_netns(node.name) + _vxlan_drop("-I", family or "ipv4"),
            f"dropping {family or 'ipv4'} VXLAN into {node.name}")

    def reconnect(self, nodes: list[t.Node], cidrs: dict[str, str], node: t.Node,
                  cidrs6: dict[str, str] | None = None, family: str | None = None) -> None:
        argv = in_netns(node.name) + _vxlan_drop("-D", family or "ipv4")
        while subprocess.run(argv, capture_output=True, check=False).returncode == 0:
            pass  # every copy, should the fault have been injected twice

    def set_hairpin(self, nodes: list[t.Node], cidrs: dict[str, str], on: bool) -> None:
        for n in nodes:
            _write_conflist(n, hairpin=on)
            hairpin_ports(n, on)

    def versions(self) -> str:
        from ..state import load
        state = load()
        running = state.cni_version or versions.FLANNEL
        changed = "".join(f", {k} {v}" for k, v in sorted(state.cni_settings.items()))
        return f"flanneld {running}{changed}, kube-router {versions.KUBE_ROUTER}"

    def upgrade(self, state: State, nodes: list[t.Node], version: str, log: Callable[[str], None],
                vxlan_port: int | None = None, all_nodes: bool = True) -> None:
        """flanneld replaced node by node, as the DaemonSet's rolling update does
        (maxUnavailable 1): stop the old agent, start the new one, wait until it
        holds its lease again (a fresh subnet.env) and its Node is Ready, then the
        next node. The pods keep running: flannel.1 and the bridge stay up while
        the agent is away, as they do when a DaemonSet pod is replaced.
        `vxlan_port` changes the VXLAN port in net-conf.json as well, the way an
        upgrade shipping a changed ConfigMap would (all nodes, one by one)."""
        old = _running_version(state)
        # Built first: a failed build touches no node.
        took = build.build_one(build.flannel_at(version), log)
        if took is not None:
            log(f"built flanneld {version} in {took:.0f}s")
        done: list[str] = []
        for node in nodes:
            started = time.monotonic()
            try:
                self._replace(state, node, version, vxlan_port)
            except LabError as exc:
                rest = [n.name for n in nodes if n.name not in done]
                raise LabError(f"upgrade stopped at {node.name}: {exc}; {', '.join(done) or 'no node'} "
                               f"run flanneld {version}, {', '.join(rest)} {old}; "
                               f"`packetwalk lab upgrade --cni flannel@{old}` goes back") from None
            done.append(node.name)
            log(f"{node.name}: flanneld {version} holds its lease, node Ready "
                f"({time.monotonic() - started:.1f}s)")
        on = "" if all_nodes else f" on {', '.join(done)} ({old} on the others)"
        state.cni_version = "" if version == versions.FLANNEL and all_nodes else version + on
        settings_on = "" if all_nodes else f" on {', '.join(done)} ({VXLAN_PORT} on the others)"
        state.cni_settings = {} if vxlan_port is None else {"VXLAN port": f"{vxlan_port}{settings_on}"}
        state.save()

    def _replace(self, state: State, node: t.Node, version: str, vxlan_port: int | None) -> None:
        stop_component(state, AGENT, node.name)
        if vxlan_port is not None or state.cni_settings:
            # Going back names the default port: flanneld keeps an existing flannel.1
            # whose port differs from none it was told (its vxlanLinksIncompat compares
            # ports only when both are set), so a net-conf without Port leaves the
            # device on the changed port. Measured: the rollback left pw-worker on 8473.
            host_path(node, NET_CONF).write_text(lab_net_conf(state.ip_family, vxlan_port or VXLAN_PORT))
        # Pods starting while the agent is away do not need subnet.env: the conflist is on disk.
        _start_agent(state, node, version)
        _await_ready(node)


CNI = Flannel()
