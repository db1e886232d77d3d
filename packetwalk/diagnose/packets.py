"""What a capture shows, decided the way a network engineer reads tcpdump. Pure.

Input: decoded lines (`tcpdump -nn -tt -r FILE`) per capture point, in path
order: client veth, client node uplink, server node uplink, server veth.
The client's flows are the source ports it used toward the target; the
server side is matched on the client's IP and those ports, because in-cluster
traffic keeps the pod source IP (a ClusterIP only rewrites the destination).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from packetwalk.families import IPV6, family_of, host_cidr

NEVER_SENT = "client never sent the packet"
NEVER_SEEN = "server never saw the packet"
NO_ANSWER = "server saw it but did not answer"
ANSWER_LOST = "server answered, client never got it"
ANSWERED = "client got the answer"
NO_SERVER_SIDE = "client sent it, no answer came back (server side not captured)"
UNMASQUERADED = "the request left the node with the pod's own address (not masqueraded)"
RESET = "client got only a TCP reset: nothing accepted the connection where it arrived"
CASES = (NEVER_SENT, NEVER_SEEN, NO_ANSWER, ANSWER_LOST, ANSWERED, NO_SERVER_SIDE, UNMASQUERADED,
         RESET)

CLIENT, SERVER, UPLINK = "client", "server", "uplink"

_PACKET = re.compile(r"^(?P<ts>\d+\.\d+) IP (?P<src>[\d.]+)\.(?P<sport>\d+) > "
                     r"(?P<dst>[\d.]+)\.(?P<dport>\d+): (?P<rest>.*)$")
# tcpdump 4.99 -nn prints an IPv6 TCP/UDP packet as `IP6 fd10::5.43210 > fd10::6.8080: ...`:
# the last dot of each end separates the port (the address may hold dots, ::ffff:a.b.c.d).
_PACKET6 = re.compile(r"^(?P<ts>\d+\.\d+) IP6 (?P<src>[0-9a-fA-F:.]+)\.(?P<sport>\d+) > "
                      r"(?P<dst>[0-9a-fA-F:.]+)\.(?P<dport>\d+): (?P<rest>.*)$")
_LINK = re.compile(r"^(?P<index>\d+): (?P<name>[^:@\s]+)[@:]")
_DEV = re.compile(r"\bdev (\S+)")


@dataclass(frozen=True)
class Packet:
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    line: str


@dataclass(frozen=True)
class Point:
    """One capture point: where (node, interface) and what it is (client, server, uplink)."""

    node: str
    iface: str
    role: str

    @property
    def label(self) -> str:
        return f"{self.node} {self.iface} ({self.role})"


def address(text: str) -> str:
    """An address in one spelling (IPv6 compressed, as tcpdump and Kubernetes print it),
    so the capture's addresses compare with the inventory's; anything else unchanged."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


def parse_packets(text: str) -> list[Packet]:
    """TCP/UDP packets out of `tcpdump -nn -tt` text, IPv4 (`IP`) and IPv6 (`IP6`);
    ICMP, ICMP6 and ARP carry no ports."""
    packets = []
    for line in text.splitlines():
        found = _PACKET.match(line.strip())
        if found:
            packets.append(Packet(float(found["ts"]), found["src"], int(found["sport"]),
                                  found["dst"], int(found["dport"]), line.strip()))
            continue
        found = _PACKET6.match(line.strip())
        if found and family_of(found["src"]) == family_of(found["dst"]) == IPV6:
            packets.append(Packet(float(found["ts"]), address(found["src"]), int(found["sport"]),
                                  address(found["dst"]), int(found["dport"]), line.strip()))
    return packets


def veth_of(ip_link: str, iflink: int) -> str | None:
    """The host-side interface whose index is the pod's eth0 iflink (`ip -o link`)."""
    for line in ip_link.splitlines():
        found = _LINK.match(line.strip())
        if found and int(found["index"]) == iflink:
            return found["name"]
    return None


def route_dev(route_get: str) -> str | None:
    """The device of `ip -o route get X`: the node's uplink toward X."""
    found = _DEV.search(route_get)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Finding:
    case: str  # one of the cases above
    path: str  # where the request and the answer were seen, in path order
    ports: frozenset[int] = frozenset()  # the client's source ports toward the target


def classify(captures: dict[Point, list[Packet]], client_ip: str, target: tuple[str, int],
             server_ips: set[str], external: bool = False) -> Finding:
    """Which of the cases happened to the client's flows toward `target` (ip, port).

    A ClusterIP is DNATed on the client's node, so the server veth sees the
    backend's address while the client veth sees the ClusterIP; matching on the
    client's source ports follows the flow through the translation.
    """
    # Addresses in the spelling parse_packets gives them (an IPv6 one compressed).
    client_ip, target = address(client_ip), (address(target[0]), target[1])
    server_ips = {address(ip) for ip in server_ips}
    clients = [p for p in captures if p.role == CLIENT]
    servers = [p for p in captures if p.role == SERVER]
    sent = {pkt.sport for point in clients for pkt in captures[point]
            if pkt.src == client_ip and (pkt.dst, pkt.dport) == target}
    if not sent:
        return Finding(NEVER_SENT, "no packet from the client toward the target on its veth")

    def request(pkt: Packet) -> bool:
        return pkt.src == client_ip and pkt.sport in sent

    def answer(pkt: Packet) -> bool:
        return pkt.dst == client_ip and pkt.dport in sent

    def reset(pkt: Packet) -> bool:
        return pkt.line.split(": ", 1)[-1].startswith("Flags [R")

    seen_at = [p.label for p in captures if any(request(k) for k in captures[p])]
    answered_at = [p.label for p in captures if any(answer(k) for k in captures[p])]
    path = (f"request seen at: {', '.join(seen_at) or 'nowhere'}; "
            f"answer seen at: {', '.join(answered_at) or 'nowhere'}")
    answers = [pkt for point in clients for pkt in captures[point] if answer(pkt)]
    got = bool(answers)
    if answers and all(reset(pkt) for pkt in answers):
        # A refusal is an answer too, but it says where the connection died, not that it worked.
        return Finding(RESET, path, frozenset(sent))
    # Toward the outside the node must masquerade: the capture filters on the pod's
    # address, so a request on the uplink at all means it left with that address.
    leaked = external and any(request(pkt) for point in captures if point.role == UPLINK
                              for pkt in captures[point])
    case = UNMASQUERADED if leaked else _case(
        captures, servers, request, answer, server_ips, got)
    return Finding(case, path, frozenset(sent))


def _case(captures: dict[Point, list[Packet]], servers: list[Point],
          request: Callable[[Packet], bool], answer: Callable[[Packet], bool],
          server_ips: set[str], got: bool) -> str:
    if not servers:
        return ANSWERED if got else NO_SERVER_SIDE
    saw = any(request(pkt) and (not server_ips or pkt.dst in server_ips)
              for point in servers for pkt in captures[point])
    replied = any(answer(pkt) for point in servers for pkt in captures[point])
    if got:
        return ANSWERED
    if replied:
        return ANSWER_LOST
    if saw:
        return NO_ANSWER
    return NEVER_SEEN


def decoded(captures: dict[Point, list[Packet]], client_ip: str, ports: frozenset[int],
            limit: int = 40) -> list[str]:
    """The packets of the client's flows (its source `ports`) at every point, in time
    order, relative to the first; other traffic (kubelet probes, other tests) stays
    in the pcap files only."""
    client_ip = address(client_ip)

    def of_flow(pkt: Packet) -> bool:
        return ((pkt.src, pkt.sport) in {(client_ip, p) for p in ports}
                or (pkt.dst, pkt.dport) in {(client_ip, p) for p in ports})

    rows = sorted(((pkt.ts, point.label, pkt.line) for point, packets in captures.items()
                   for pkt in packets if of_flow(pkt)))
    if not rows:
        return []
    start = rows[0][0]
    lines = [f"+{ts - start:7.3f}s {label}: {line.split(' ', 1)[1]}"
             for ts, label, line in rows]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def conntrack_summary(text: str, cluster_ip: str) -> str:
    """Whether `conntrack -L [-f ipv6] -d <ClusterIP>` shows the Service translated (DNAT)."""
    ip = address(cluster_ip)
    # The whole address: 10.96.1.2 is not 10.96.1.20, fd10::a not fd10::ab.
    entries = [line for line in text.splitlines()
               if any(address(found) == ip for found in re.findall(r"\bdst=(\S+)", line))]
    if not entries:
        return f"no conntrack entry for {cluster_ip}"
    # The reply tuple's src is the backend when DNAT happened, the ClusterIP itself when not.
    backends = sorted({m.group(1) for line in entries
                       for m in [re.search(r"dst=\S+ sport=\d+ dport=\d+ .*?src=(\S+)", line)]
                       if m and address(m.group(1)) != ip})
    if backends:
        return f"{len(entries)} entries for {cluster_ip}, translated to {', '.join(backends)}"
    return f"{len(entries)} entries for {cluster_ip}, none translated (no DNAT happened)"


def service_rules_summary(iptables: str, nft: str, ip: str, port: int, protocol: str) -> str:
    """What kube-proxy programmed for ip:port/protocol on a node, from `iptables-save`
    (all tables: the no-endpoints REJECT sits in filter) and `nft list table ip kube-proxy`;
    for an IPv6 ClusterIP from `ip6tables-save` (`-d ADDR/128`) and the `ip6` table."""
    where = f"{ip}:{port}/{protocol}"
    lines = iptables.splitlines()
    host = host_cidr(ip)
    jump = re.compile(rf"^-A KUBE-SERVICES -d {re.escape(host)} -p {protocol}\b.*--dport {port}\b"
                      r".* -j (KUBE-SVC-\w+)")
    chains = [m.group(1) for line in lines for m in [jump.match(line)] if m]
    if chains:
        chain = chains[0]
        seps = [m.group(1) for line in lines
                for m in [re.match(rf"^-A {chain} .*-j (KUBE-SEP-\w+)", line)] if m]
        targets = sorted({m.group(1) for line in lines for sep in seps
                          for m in [re.match(rf"^-A {sep} .*--to-destination (\S+)", line)] if m})
        return (f"iptables: {where} -> {chain}, {len(seps)} endpoint(s)"
                + (f": {', '.join(targets)}" if targets else ""))
    if any(f"-d {host}" in line and "has no endpoints" in line for line in lines):
        return f"iptables: {where} is rejected: the Service has no endpoints"
    if nft.strip():
        return (f"nftables: kube-proxy's table {'mentions' if ip in nft else 'does not mention'} "
                f"{ip}")
    if any("KUBE-SERVICES" in line for line in lines):
        return f"iptables: no KUBE-SERVICES rule for {where}: kube-proxy has not programmed it"
    if iptables.strip():
        return ("iptables: no kube-proxy chains on this node: kube-proxy is not running, or runs "
                "in another mode, or the CNI replaces it")
    return "Service rules unreadable: no iptables-save or nft in the debug image"
