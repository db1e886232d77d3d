"""The capture of an IPv6 probe: tcpdump's IP6 lines, the cases with IPv6 addresses, the
Service evidence from the ip6 tables and conntrack -f ipv6, and the family's addresses.

The tcpdump, ip6tables-save, nft and conntrack texts are written from the formats those
tools document (tcpdump 4.99 -nn -tt, nft 1.0.x); none was captured on a node yet.
"""

from types import SimpleNamespace

from packetwalk.diagnose import packets as pk
from packetwalk.diagnose.capture import (
    Capture,
    addresses,
    capture_filter,
    service_rules,
    service_script,
    uplink_toward,
)
from packetwalk.families import IPV4, IPV6
from packetwalk.inventory import Inventory, NoAddress, Pod
from packetwalk.placement import Node
from packetwalk.probes import ExecResult, Prober, Target

C, S, VIP = "fd10:0:0:4401::5", "fd10:0:0:4402::6", "fd10:0:0:9600::a"
CV, CU = pk.Point("w1", "veth1", pk.CLIENT), pk.Point("w1", "eth0", pk.UPLINK)
SU, SV = pk.Point("w2", "eth0", pk.UPLINK), pk.Point("w2", "veth2", pk.SERVER)
SYN = (f"1732890000.123456 IP6 {C}.43210 > {S}.8080: Flags [S], seq 1, win 64800, "
       "options [mss 1440,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0")
SYN_ACK = (f"1732890000.124000 IP6 {S}.8080 > {C}.43210: Flags [S.], seq 2, ack 2, win 64260, "
           "options [mss 1440,sackOK,TS val 2 ecr 1,nop,wscale 7], length 0")


def case(client="", uplinks="", server="", target=(S, 8080), client_ip=C, server_ip=S):
    captures = {CV: pk.parse_packets(client), CU: pk.parse_packets(uplinks),
                SU: pk.parse_packets(uplinks), SV: pk.parse_packets(server)}
    return pk.classify(captures, client_ip, target, {server_ip})


def test_ipv6_tcp_and_udp_lines_are_parsed_the_last_dot_before_the_port():
    udp = f"1732890000.200000 IP6 {C}.40000 > {VIP}.53: 1234+ AAAA? servers.pw-1.svc.cluster.local. (40)"
    tcp, dns = pk.parse_packets(f"{SYN}\n{udp}")
    assert (tcp.ts, tcp.src, tcp.sport, tcp.dst, tcp.dport) == (1732890000.123456, C, 43210, S, 8080)
    assert (dns.src, dns.sport, dns.dst, dns.dport) == (C, 40000, VIP, 53)
    assert dns.line == udp
    # An IPv4-mapped address keeps its dots; the port is after the last one.
    mapped = pk.parse_packets("1.0 IP6 ::ffff:10.0.0.1.5000 > ::ffff:10.0.0.2.80: Flags [S], length 0")
    assert [(p.src, p.sport, p.dst, p.dport) for p in mapped] == [
        (pk.address("::ffff:10.0.0.1"), 5000, pk.address("::ffff:10.0.0.2"), 80)]


def test_ipv6_lines_without_ports_are_left_out_and_ipv4_lines_still_parse():
    icmp6 = f"1.0 IP6 {C} > {S}: ICMP6, echo request, id 7, seq 1, length 64"
    ndp = f"1.1 IP6 {C} > ff02::1:ff00:6: ICMP6, neighbor solicitation, who has {S}, length 32"
    four = "1.000000 IP 10.244.1.5.40000 > 10.244.2.7.8080: Flags [S], seq 1, length 0"
    assert pk.parse_packets(f"{icmp6}\n{ndp}") == []
    assert [(p.src, p.dport) for p in pk.parse_packets(f"{icmp6}\n{four}\n{SYN}")] == [
        ("10.244.1.5", 8080), (C, 8080)]


def test_the_cases_with_ipv6_addresses():
    both = f"{SYN}\n{SYN_ACK}"
    # (client veth, uplinks, server veth): the case the capture reads.
    seen = {(SYN, SYN, ""): pk.NEVER_SEEN, (SYN, SYN, SYN): pk.NO_ANSWER,
            (SYN, SYN, both): pk.ANSWER_LOST, (both, "", both): pk.ANSWERED,
            ("", "", SYN): pk.NEVER_SENT}
    assert {points: case(*points).case for points in seen} == seen


def test_addresses_are_compared_in_one_spelling():
    # An expanded spelling from elsewhere still finds tcpdump's compressed one.
    expanded_c, expanded_s = "fd10:0000:0000:4401:0000:0000:0000:0005", "FD10:0:0:4402:0:0:0:6"
    finding = case(client=SYN, uplinks=SYN, server=f"{SYN}\n{SYN_ACK}", target=(expanded_s, 8080),
                   client_ip=expanded_c, server_ip=expanded_s)
    assert finding.case == pk.ANSWER_LOST and finding.ports == {43210}


def test_a_cluster_ip_flow_in_ipv6_is_followed_through_dnat_and_decoded():
    to_vip = f"1732890000.120000 IP6 {C}.43210 > {VIP}.80: Flags [S], seq 1, length 0"
    finding = case(client=to_vip, server=f"{SYN}\n{SYN_ACK}", target=(VIP, 80))
    assert finding.case == pk.ANSWER_LOST and "answer seen at: w2 veth2 (server)" in finding.path
    captures = {CV: pk.parse_packets(to_vip), SV: pk.parse_packets(SYN_ACK)}
    assert pk.decoded(captures, C, finding.ports) == [
        f"+  0.000s w1 veth1 (client): IP6 {C}.43210 > {VIP}.80: Flags [S], seq 1, length 0",
        f"+  0.004s w2 veth2 (server): {SYN_ACK.split(' ', 1)[1]}"]


# `ip6tables-save`: kube-proxy's iptables mode writes IPv6 rules as the IPv4 ones, /128.
IP6TABLES = f"""*nat
-A KUBE-SERVICES -d {VIP}/128 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> [fd10:0:0:4402::3]:53" -m statistic --mode random --probability 0.5 -j KUBE-SEP-AAA
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> [fd10:0:0:4401::3]:53" -j KUBE-SEP-BBB
-A KUBE-SEP-AAA -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination [fd10:0:0:4402::3]:53
-A KUBE-SEP-BBB -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination [fd10:0:0:4401::3]:53
COMMIT
*filter
-A KUBE-SERVICES -d fd10:0:0:9600::b/128 -p tcp -m comment --comment "pw-1/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable
COMMIT
"""

# `nft list table ip6 kube-proxy`: kube-proxy's nftables mode, the IPv6 table.
NFT6 = f"""table ip6 kube-proxy {{
\tcomment "rules for kube-proxy"
\tmap service-ips {{
\t\ttype ipv6_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\telements = {{ {VIP} . tcp . 53 : goto service-ERIFXISQ-kube-system/kube-dns/tcp/dns-tcp,
\t\t\t     {VIP} . udp . 53 : goto service-64NUTNC3-kube-system/kube-dns/udp/dns,
\t\t\t     fd10:0:0:9600::ab . tcp . 80 : goto service-OTHER-pw-1/other/tcp/http }}
\t}}

\tmap no-endpoint-services {{
\t\ttype ipv6_addr . inet_proto . inet_service : verdict
\t\telements = {{ fd10:0:0:9600::b . tcp . 80 comment "pw-1/empty:http" : goto reject-chain }}
\t}}

\tchain endpoint-5OJB2KTY-kube-system/kube-dns/udp/dns__fd10:0:0:4402::3/53 {{
\t\tip6 saddr fd10:0:0:4402::3 jump mark-for-masquerade
\t\tmeta l4proto udp dnat to [fd10:0:0:4402::3]:53
\t}}

\tchain service-64NUTNC3-kube-system/kube-dns/udp/dns {{
\t\tip6 daddr {VIP} udp dport 53 ip6 saddr != fd10::/48 jump mark-for-masquerade
\t\tnumgen random mod 1 vmap {{ 0 : goto endpoint-5OJB2KTY-kube-system/kube-dns/udp/dns__fd10:0:0:4402::3/53 }}
\t}}

\tchain service-ERIFXISQ-kube-system/kube-dns/tcp/dns-tcp {{
\t\tmeta l4proto tcp dnat ip6 to numgen random mod 2 map {{ 0 : fd10:0:0:4402::3 . 53, 1 : fd10:0:0:4401::3 . 53 }}
\t}}
}}
"""


def test_ipv6_service_rules_in_iptables_mode():
    assert service_rules(IP6TABLES, "", VIP, 53, "udp") == (
        f"iptables: {VIP}:53/udp -> KUBE-SVC-TCOU7JCQXEZGVUNU, 2 endpoint(s): "
        "[fd10:0:0:4401::3]:53, [fd10:0:0:4402::3]:53")
    assert service_rules(IP6TABLES, "", "fd10:0:0:9600::b", 80, "tcp") == (
        "iptables: fd10:0:0:9600::b:80/tcp is rejected: the Service has no endpoints")
    assert "no KUBE-SERVICES rule" in service_rules(IP6TABLES, "", VIP, 53, "tcp")


def test_ipv6_service_rules_in_nftables_mode():
    assert service_rules(IP6TABLES, NFT6, VIP, 53, "udp") == (
        f"nftables: {VIP}:53/udp -> service-64NUTNC3-kube-system/kube-dns/udp/dns, "
        "1 endpoint(s): [fd10:0:0:4402::3]:53")
    assert service_rules("", NFT6, VIP, 53, "tcp").endswith(
        "2 endpoint(s): [fd10:0:0:4401::3]:53, [fd10:0:0:4402::3]:53")
    assert service_rules("", NFT6, "fd10:0:0:9600::b", 80, "tcp") == (
        "nftables: fd10:0:0:9600::b:80/tcp is rejected: the Service has no endpoints")
    # A whole address only: fd10:0:0:9600::a is not the head of fd10:0:0:9600::ab, nor
    # 0:0:9600::a the tail of fd10:0:0:9600::a.
    assert "has not programmed it" in service_rules("", NFT6, VIP, 80, "tcp")
    assert "has not programmed it" in service_rules("", NFT6, "0:0:9600::a", 53, "udp")


def test_ipv6_conntrack_tells_whether_the_service_was_translated():
    translated = (f"udp      17 29 src={C} dst={VIP} sport=40000 dport=53 "
                  f"src=fd10:0:0:4402::3 dst={C} sport=53 dport=40000 mark=0 use=1")
    untranslated = (f"tcp      6 117 SYN_SENT src={C} dst={VIP} sport=43210 dport=53 [UNREPLIED] "
                    f"src={VIP} dst={C} sport=53 dport=43210 mark=0 use=1")
    longer = (f"tcp      6 117 SYN_SENT src={C} dst=fd10:0:0:9600::ab sport=1 dport=80 [UNREPLIED] "
              f"src=fd10:0:0:9600::ab dst={C} sport=80 dport=1 mark=0 use=1")
    assert pk.conntrack_summary(translated, VIP) == (
        f"1 entries for {VIP}, translated to fd10:0:0:4402::3")
    assert "none translated" in pk.conntrack_summary(untranslated, VIP)
    assert pk.conntrack_summary(longer, VIP) == f"no conntrack entry for {VIP}"


def test_the_service_state_is_read_from_the_tables_of_the_cluster_ips_family():
    assert service_script("10.96.0.10") == (
        "echo '@@ rules iptables'; iptables-save 2>/dev/null; "
        "echo '@@ rules nft'; nft list table ip kube-proxy 2>/dev/null; "
        "echo '@@ conntrack -'; conntrack -L -d 10.96.0.10 2>/dev/null; "
        "echo '@@ proxymode -'; curl -s -m 2 http://127.0.0.1:10249/proxyMode 2>/dev/null; echo; true")
    assert service_script(VIP) == (
        "echo '@@ rules iptables'; ip6tables-save 2>/dev/null; "
        "echo '@@ rules nft'; nft list table ip6 kube-proxy 2>/dev/null; "
        f"echo '@@ conntrack -'; conntrack -L -f ipv6 -d {VIP} 2>/dev/null; "
        "echo '@@ proxymode -'; curl -s -m 2 http://127.0.0.1:10249/proxyMode 2>/dev/null; echo; true")


A = Node("pw-worker", "10.250.0.11", "pw-worker", ("10.250.0.11", "fd10:250::11"))
B = Node("pw-worker2", "10.250.0.12", "pw-worker2", ("10.250.0.12", "fd10:250::12"))
V4ONLY = Node("pw-worker3", "10.250.0.13", "pw-worker3")


def pods() -> dict[str, Pod]:
    return {p.name: p for p in (
        Pod("client-pw-worker", "pw-1", "client", "pw-worker", "10.244.1.5", 8080,
            ips=("10.244.1.5", C)),
        Pod("server-pw-worker2", "pw-1", "server", "pw-worker2", "10.244.2.6", 8080,
            ips=("10.244.2.6", S)),
        Pod("server-v4", "pw-1", "server", "pw-worker2", "10.244.2.9", 8080),
        Pod("debug-pw-worker", "pw-host", "debug", "pw-worker", "10.250.0.11", 0),
        Pod("debug-pw-worker2", "pw-host", "debug", "pw-worker2", "10.250.0.12", 0))}


def test_the_capture_takes_each_ends_address_in_the_family():
    p = pods()
    client, servers = p["client-pw-worker"], [p["server-pw-worker2"], p["server-v4"]]
    assert addresses(client, servers, IPV6) == (C, [(servers[0], S)])
    assert addresses(client, servers, IPV4) == (
        "10.244.1.5", [(servers[0], "10.244.2.6"), (servers[1], "10.244.2.9")])
    assert addresses(client, servers, None)[0] == "10.244.1.5"  # the primary, as before
    try:
        addresses(servers[1], [], IPV6)
        raise AssertionError("a client without an IPv6 address has nothing to filter on")
    except NoAddress as exc:
        assert "has no IPv6 address" in str(exc)
    assert capture_filter(C) == f"ip6 host {C}" and capture_filter("10.244.1.5") == "ip host 10.244.1.5"


def test_the_uplink_is_the_route_toward_a_node_address_in_the_family():
    nodes = [A, B, V4ONLY]
    assert uplink_toward(nodes, "pw-worker", {"pw-worker", "pw-worker2"}, IPV6) == "fd10:250::12"
    assert uplink_toward(nodes, "pw-worker", {"pw-worker", "pw-worker2"}, IPV4) == "10.250.0.12"
    assert uplink_toward(nodes, "pw-worker", {"pw-worker"}, None) == "10.250.0.12"
    # A node without an address in the family: its primary still names the uplink device.
    assert uplink_toward([V4ONLY, A], "pw-worker", {"pw-worker", "pw-worker3"}, IPV6) == "10.250.0.13"
    assert uplink_toward([A], "pw-worker", {"pw-worker"}, IPV6) == ""


def test_around_captures_an_ipv6_cluster_ip_probe_in_ipv6(tmp_path):
    """around() on a scripted exec (no cluster): what it runs on the debug pods and what
    it concludes from IPv6 packets."""
    to_vip = f"1732890000.120000 IP6 {C}.43210 > {VIP}.53: Flags [S], seq 1, length 0"
    server_side = f"{SYN.replace('.8080', '.53')}\n{SYN_ACK.replace('.8080', '.53')}"
    scripts = []

    def fake_exec(src, command, timeout):
        script = command[-1]
        scripts.append((src.pod, script))
        if command[:2] == ["cat", "/sys/class/net/eth0/iflink"]:
            return ExecResult(0, {"client-pw-worker": "22\n", "server-pw-worker2": "33\n"}[src.pod], "", 0.0)
        if script.startswith("ip -o link"):
            links = "1: lo: <LOOPBACK>\n2: eth0@if9: <BROADCAST>\n22: veth1@if2: <UP>\n33: veth2@if2: <UP>\n"
            peers = script.split("for p in ", 1)[1].split("; do", 1)[0].split()
            routes = "".join(f"@@ route {p}\n{p} dev eth0 src x\n" for p in peers)
            return ExecResult(0, f"{links}{routes}@@ route uplink\nfd10:250::12 dev eth0 src x\n", "", 0.0)
        if "@@ rules iptables" in script:
            return ExecResult(0, f"@@ rules iptables\n{IP6TABLES}@@ rules nft\n{NFT6}@@ conntrack -\n", "", 0.0)
        if script.startswith("kill -INT"):
            decode = to_vip if src.node == "pw-worker" else server_side
            iface = "veth1" if src.node == "pw-worker" else "veth2"
            return ExecResult(0, f"@@ decode {iface}\n{decode}\n@@ decode eth0\n@@ pcap {iface}\n", "", 0.0)
        return ExecResult(0, "", "", 0.0)  # starting tcpdump

    p = pods()
    inv = Inventory("1", "pw-1", "pw-1-peer", [A, B], "10.96.0.10", p, {})
    capture = Capture(Prober(fake_exec), inv, tmp_path)
    result = capture.around("t", p["client-pw-worker"], [p["server-pw-worker2"]],
                            Target(VIP, 53, "tcp"), lambda: SimpleNamespace(cls="TIMEOUT"),
                            VIP, family=IPV6)
    assert result.case == pk.ANSWER_LOST and result.retried == "TIMEOUT"
    assert f"{C}.43210 > {VIP}.53" in result.packets[0]
    starts = [s for _, s in scripts if s.startswith("tcpdump -i")]
    assert len(starts) == 2 and all(f"'ip6 host {C}'" in s for s in starts)
    listings = [s for _, s in scripts if s.startswith("ip -o link")]
    assert all(f"for p in {S} {C}; do" in s for s in listings)  # the routes toward each end
    assert "ip -o route get fd10:250::12" in listings[0]
    assert "ip -o route get fd10:250::11" in listings[1]
    assert ("debug-pw-worker", service_script(VIP)) in scripts
    assert result.service[0] == (
        f"pw-worker: nftables: {VIP}:53/tcp -> service-ERIFXISQ-kube-system/kube-dns/tcp/dns-tcp, "
        "2 endpoint(s): [fd10:0:0:4401::3]:53, [fd10:0:0:4402::3]:53")
    # A client with no address in the family: a clear skip, nothing started.
    scripts.clear()
    skipped = capture.around("t", p["server-v4"], [], Target(VIP, 53, "tcp"),
                             lambda: SimpleNamespace(cls="OK"), VIP, family=IPV6)
    assert skipped.skipped.startswith("nothing to filter on: pod server-v4 has no IPv6 address")
    assert scripts == []
