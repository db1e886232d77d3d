"""tcpdump at both ends while a failed probe is retried (--capture-packets).

The run's privileged hostNetwork debug pods (one per node, workloads.DEBUG)
capture on the node itself: on each end pod's host-side veth (found from the
index in the pod's /sys/class/net/eth0/iflink) and on the node's uplink. A
hostNetwork end has no veth of its own; its interface is the one its node
routes the peer through. tcpdump runs in the background of one exec per node
and is stopped by a second one, which prints the decoded packets and the
pcap in base64 (the exec stream carries text). Decisions are in packets.py.

The capture is in the family of the address the probe dialed (an IPv6 twin's:
IPv6): the client's and the servers' addresses in it, `ip host` or `ip6 host` as the filter,
and the Service evidence from that family's tables (ip6tables-save, the `ip6`
kube-proxy table, conntrack -f ipv6).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packetwalk.diagnose.packets import (
    CLIENT,
    SERVER,
    UPLINK,
    Point,
    classify,
    conntrack_summary,
    decoded,
    parse_packets,
    route_dev,
    service_rules_summary,
    veth_of,
)
from packetwalk.families import IPV4, IPV6, family_of, of_family
from packetwalk.inventory import Inventory, NoAddress, Pod, WorkloadError
from packetwalk.netfacts import PROXY_MODE_PORT, REPLACES_KUBE_PROXY, proxy_mode_from_endpoint
from packetwalk.placement import Node
from packetwalk.probes import Observation, ProbeError, Prober, Target

LISTEN_WAIT = 5  # seconds tcpdump may take to open its interfaces
MAX_PACKETS = 2000  # per interface: a busy client must not fill the exec stream
_SECTION = re.compile(r"^@@ (\w+) (\S+)$")
# Where each family's Service evidence is read: the iptables dump, the kube-proxy nft
# table's family, conntrack's family option.
_RULES = {IPV4: ("iptables-save", "ip", ""), IPV6: ("ip6tables-save", "ip6", "-f ipv6 ")}


@dataclass
class CaptureResult:
    case: str = ""
    path: str = ""
    retried: str = ""  # the class the retried probe got
    packets: list[str] = field(default_factory=list)
    pcaps: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)  # kube-proxy rules, conntrack entries
    skipped: str = ""  # why there is no capture


def sections(text: str) -> dict[tuple[str, str], str]:
    """Split the stop script's output at its '@@ <what> <iface>' markers (pure)."""
    found: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        marker = _SECTION.match(line)
        if marker:
            current = found.setdefault((marker.group(1), marker.group(2)), [])
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in found.items()}


def _nft_blocks(nft: str) -> dict[str, str]:
    """{chain or map name: its body} of `nft list table` output."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in nft.splitlines():
        opening = re.match(r"^\s*(?:chain|map|set) (\S+) \{\s*$", line)
        if opening:
            current = blocks.setdefault(opening.group(1), [])
        elif re.match(r"^\s*\}\s*$", line) and current is not None and not line.startswith("\t\t"):
            current = None
        elif current is not None:
            current.append(line.strip())
    return {name: "\n".join(body) for name, body in blocks.items()}


def _dnat_targets(body: str) -> list[str]:
    """Endpoints in a kube-proxy nft chain: `dnat to IP:PORT` (`[IPv6]:PORT`), or the numgen
    map's `N : IP . PORT`."""
    targets = re.findall(r"\bdnat (?:ip6? )?to (?!numgen )(\S+)", body)
    # nft 1.0.6 prints kube-proxy's `dnat ip addr . port to` as `dnat ip to` (ip6 alike).
    for mapped in re.findall(r"\bdnat ip6? (?:addr \. port )?to numgen random mod \d+ map \{([^}]*)\}",
                             body):
        targets += [f"[{a}]:{p}" if family_of(a) == IPV6 else f"{a}:{p}"
                    for a, p in re.findall(r"\d+ : (\S+) \. (\d+)", mapped)]
    return targets


def nft_service_summary(nft: str, ip: str, port: int, protocol: str) -> str:
    """What kube-proxy's nftables mode programmed for ip:port/protocol, from `nft list
    table ip kube-proxy` (`ip6` for an IPv6 ClusterIP): the service-ips element, its
    chain, the endpoints it DNATs to."""
    where = f"{ip}:{port}/{protocol}"
    # The whole address: not the tail of a longer one (fd10::a inside bfd10::a, 1.2.3.4 in 11.2.3.4).
    element = re.compile(rf"(?<![\w.:]){re.escape(ip)} \. {protocol} \. {port}(?: comment \"[^\"]*\")? : "
                         r"(goto (\S+?)|drop|reject)[,\s}]")
    blocks = _nft_blocks(nft)
    found = element.search(blocks.get("service-ips", "") + " ")
    if found and found.group(2):
        chain = found.group(2)
        body = blocks.get(chain, "")
        hops = re.findall(r"\bgoto (endpoint-\S+?)(?=[,\s}]|$)", body)
        targets = sorted(set(_dnat_targets(body) + [t for h in hops for t in _dnat_targets(blocks.get(h, ""))]))
        return (f"nftables: {where} -> {chain}, {len(targets)} endpoint(s)"
                + (f": {', '.join(targets)}" if targets else ""))
    if element.search(blocks.get("no-endpoint-services", "") + " "):
        return f"nftables: {where} is rejected: the Service has no endpoints"
    return f"nftables: no service-ips element for {where}: kube-proxy has not programmed it"


def service_translating_cni(iptables: str) -> str | None:
    """The CNI agent on the node that can stand in for kube-proxy, from iptables-save
    (the chains netfacts.REPLACES_KUBE_PROXY says each leaves)."""
    return next((name for name, chains in REPLACES_KUBE_PROXY.items() if chains.search(iptables)), None)


def service_rules(iptables: str, nft: str, ip: str, port: int, protocol: str,
                  proxy_mode: str | None = None) -> str:
    """The node's own Service rules, in whichever mode its kube-proxy runs: its nft
    table when the node has one (nftables mode), else iptables-save (ip6tables-save and
    the `ip6` table for an IPv6 ClusterIP). `proxy_mode`: what
    127.0.0.1:10249/proxyMode answered on the node (None: not asked). No kube-proxy
    answering, none of its rules, and a CNI agent that translates Services: the line
    says so, rather than that kube-proxy's rules are missing."""
    if re.search(r"^table ip6? kube-proxy \{", nft, re.MULTILINE):
        return nft_service_summary(nft, ip, port, protocol)
    if (proxy_mode is not None and proxy_mode_from_endpoint(proxy_mode) is None
            and "KUBE-SERVICES" not in iptables
            and (cni := service_translating_cni(iptables))):
        return f"no kube-proxy rules on this cluster: Services are translated by the CNI ({cni})"
    return service_rules_summary(iptables, "", ip, port, protocol)


def capture_filter(address: str) -> str:
    """tcpdump's filter for the client's flows, in the address's family: `ip host` as
    IPv4 captures always had (no ARP in the packet budget), `ip6 host` for IPv6."""
    return f"{'ip6' if family_of(address) == IPV6 else 'ip'} host {address}"


def addresses(client: Pod, servers: list[Pod], family: str | None) -> tuple[str, list[tuple[Pod, str]]]:
    """The client's address in `family` (None: its primary; NoAddress when it has none)
    and each server's that has one: a server without one was not dialed in it."""
    return client.ip_of(family), [(server, ip) for server in servers
                                  for ip in [of_family(server.ips, family)] if ip]


def uplink_toward(nodes: list[Node], node: str, ends: set[str], family: str | None) -> str:
    """The address whose route from `node` is its uplink: the other end's node first,
    else any other node; at its address in `family`, else its primary (the route then
    still names the device the node reaches the others through). '' alone in the run."""
    others = sorted((n.name not in ends, n.ip_of(family) or n.ip) for n in nodes if n.name != node)
    return others[0][1] if others else ""


def service_script(service_ip: str) -> str:
    """The shell that prints kube-proxy's rules and the conntrack entries for the
    ClusterIP, from the tables of its family, and kube-proxy's /proxyMode answer,
    between '@@' markers (sections())."""
    dump, table, option = _RULES[IPV6 if family_of(service_ip) == IPV6 else IPV4]
    return (f"echo '@@ rules iptables'; {dump} 2>/dev/null; "
            f"echo '@@ rules nft'; nft list table {table} kube-proxy 2>/dev/null; "
            f"echo '@@ conntrack -'; conntrack -L {option}-d {shlex.quote(service_ip)} 2>/dev/null; "
            # No answer here and no KUBE-SERVICES: no kube-proxy on the node (service_rules).
            f"echo '@@ proxymode -'; curl -s -m 2 http://127.0.0.1:{PROXY_MODE_PORT}/proxyMode "
            "2>/dev/null; echo; true")


class Capture:
    def __init__(self, prober: Prober, inventory: Inventory, out_dir: Path):
        self.prober, self.inventory, self.out_dir = prober, inventory, out_dir

    def _debug_pod(self, node: str) -> Pod:
        return self.inventory.pod_on("debug", node)

    def _sh(self, pod: Pod, script: str, what: str, timeout: float = 20) -> str:
        result = self.prober.run(pod.source(), ["sh", "-c", script], timeout)
        if result.rc != 0:
            raise ProbeError(f"{what} on {pod.node} failed (exit {result.rc}): "
                             f"{(result.stderr or result.stdout).strip()[-300:]}")
        return result.stdout

    def _iface(self, end: Pod, node_links: str, route_to_peer: str) -> str | None:
        if end.role == "host":
            return route_dev(route_to_peer)
        iflink = self.prober.read(end.source(), ["cat", "/sys/class/net/eth0/iflink"], "iflink")
        return veth_of(node_links, int(iflink.strip()))

    def _points(self, client: tuple[Pod, str], servers: list[tuple[Pod, str]],
                toward: str | None = None, family: str | None = None) -> dict[str, dict[Point, str]]:
        """Per node: each capture point and the interface it listens on. `client`,
        `servers`: each end with its address in the capture's `family`. `toward`: an
        outside host, whose route picks the uplink instead of the other nodes'."""
        ends = [(client[0], CLIENT, servers[0][1] if servers else "")]
        ends += [(server, SERVER, client[1]) for server, _ in servers]
        nodes = {pod.node for pod, _, _ in ends}
        points: dict[str, dict[Point, str]] = {node: {} for node in nodes}
        for node in sorted(nodes):
            debug = self._debug_pod(node)
            # The uplink: where this node routes the other end's node (or any other node).
            far = toward or uplink_toward(self.inventory.nodes, node, nodes, family)
            peers = " ".join(shlex.quote(peer) for _, _, peer in ends if peer)
            text = self._sh(debug, "ip -o link; for p in " + peers + "; do echo \"@@ route $p\";"
                            " ip -o route get \"$p\"; done; echo '@@ route uplink'; "
                            + (f"ip -o route get {shlex.quote(far)}" if far else "true"),
                            "listing interfaces")
            links = text.split("@@", 1)[0]
            routes = sections(text)
            for pod, role, peer in ends:
                if pod.node != node:
                    continue
                iface = self._iface(pod, links, routes.get(("route", peer), ""))
                if iface:
                    points[node][Point(node, iface, role)] = iface
            uplink = route_dev(routes.get(("route", "uplink"), ""))
            if uplink:
                points[node][Point(node, uplink, UPLINK)] = uplink
        return points

    def around(self, test: str, client: Pod, servers: list[Pod], target: Target,
               retry: Callable[[], Observation], service_ip: str | None,
               external: bool = False, family: str | None = None) -> CaptureResult:
        """Capture while `retry` runs; decide the case; write the pcaps. `family`: the
        one the probe dialed in (None: the primary addresses)."""
        try:
            client_ip, ends = addresses(client, servers, family)
        except NoAddress as exc:
            return CaptureResult(skipped=f"nothing to filter on: {exc}")
        try:
            points = self._points((client, client_ip), ends, target.ip if external else None, family)
        except WorkloadError as exc:
            return CaptureResult(skipped=f"no debug pod ({exc})")
        token = secrets.token_hex(3)
        filt = shlex.quote(capture_filter(client_ip))
        started: list[str] = []
        try:
            for node, wanted in points.items():
                ifaces = sorted(set(wanted.values()))
                start = "".join(
                    f"tcpdump -i {shlex.quote(i)} -nn -U -c {MAX_PACKETS} "
                    f"-w /tmp/pw-{token}-{i}.pcap {filt} </dev/null >/tmp/pw-{token}-{i}.log 2>&1 "
                    f"& echo $! >>/tmp/pw-{token}.pids; " for i in ifaces)
                logs = " ".join(f"/tmp/pw-{token}-{i}.log" for i in ifaces)
                wait = (f"n=0; while [ $n -lt {LISTEN_WAIT * 5} ]; do "
                        f"[ $(cat {logs} | grep -c listening) -ge {len(ifaces)} ] && exit 0; "
                        f"n=$((n+1)); sleep 0.2; done; cat {logs}; exit 1")
                started.append(node)
                self._sh(self._debug_pod(node), start + wait, "starting tcpdump")
            retried = retry()
            time.sleep(0.5)  # a late answer still lands in the capture
            service = self._service_state(client.node, service_ip, target) if service_ip else []
        finally:
            outputs = {node: self._stop(node, token, sorted(set(points[node].values())))
                       for node in started}
        captures = {}
        pcaps = []
        for node, wanted in points.items():
            found = sections(outputs.get(node, ""))
            for point, iface in wanted.items():
                captures[point] = parse_packets(found.get(("decode", iface), ""))
            for iface in sorted(set(wanted.values())):
                pcaps += self._write(test, node, iface, found.get(("pcap", iface), ""))
        finding = classify(captures, client_ip, (target.ip, target.port),
                           {ip for _, ip in ends}, external)
        return CaptureResult(case=finding.case, path=finding.path, retried=retried.cls,
                             packets=decoded(captures, client_ip, finding.ports), pcaps=pcaps,
                             service=service)

    def _stop(self, node: str, token: str, ifaces: list[str]) -> str:
        script = (f"kill -INT $(cat /tmp/pw-{token}.pids) 2>/dev/null; sleep 0.3; "
                  + "".join(f"echo '@@ decode {i}'; tcpdump -nn -tt -r /tmp/pw-{token}-{i}.pcap "
                            f"2>/dev/null; echo '@@ pcap {i}'; base64 /tmp/pw-{token}-{i}.pcap; "
                            for i in ifaces)
                  + f"rm -f /tmp/pw-{token}*")
        return self._sh(self._debug_pod(node), script, "stopping tcpdump", timeout=30)

    def _service_state(self, node: str, service_ip: str, target: Target) -> list[str]:
        """kube-proxy's rules for the Service (or that the CNI translates it), the
        conntrack entries and kube-proxy's /proxyMode answer, on the client's node, in
        the ClusterIP's family."""
        text = self._sh(self._debug_pod(node), service_script(service_ip),
                        "reading the Service's rules and conntrack")
        found = sections(text)
        rules = service_rules(found.get(("rules", "iptables"), ""), found.get(("rules", "nft"), ""),
                              service_ip, target.port, target.protocol, found.get(("proxymode", "-"), ""))
        conntrack = found.get(("conntrack", "-"), "")
        entries = [line.strip() for line in conntrack.splitlines() if line.strip()]
        return [f"{node}: {rules}", f"{node}: {conntrack_summary(conntrack, service_ip)}",
                *entries[:5]]

    def _write(self, test: str, node: str, iface: str, b64: str) -> list[str]:
        try:
            data = base64.b64decode("".join(b64.split()), validate=True)
        except binascii.Error:
            return []
        if not data:
            return []
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', test).strip('-')}" \
                              f"-{node}-{iface}.pcap"
        path.write_bytes(data)
        return [str(path)]
