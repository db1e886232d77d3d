"""The capture's Service evidence reads the rules of the mode the node's kube-proxy runs in."""

from packetwalk.diagnose.capture import service_rules

# `nft list table ip kube-proxy` as nft 1.0.6 prints kube-proxy's rules (the rule
# shapes of upstream's pkg/proxy/nftables tests: one endpoint, a numgen map, an
# affinity vmap to endpoint chains, a Service without endpoints).
NFT = """table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\telements = { 172.30.0.4 . udp . 53 : goto service-ULMVA6XW-ns1/svc1/tcp/p80,
\t\t\t     172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80,
\t\t\t     172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80,
\t\t\t     172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
\t}

\tmap no-endpoint-services {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : goto reject-chain }
\t}

\tchain endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {
\t\tmeta l4proto tcp dnat to 10.180.0.3:80
\t}

\tchain endpoint-AAAAAAAA-ns5/svc5/tcp/p80__10.180.0.4/80 {
\t\tmeta l4proto tcp dnat to 10.180.0.4:80
\t}

\tchain service-HVFWP5L3-ns5/svc5/tcp/p80 {
\t\tip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
\t\tnumgen random mod 2 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80, 1 : goto endpoint-AAAAAAAA-ns5/svc5/tcp/p80__10.180.0.4/80 }
\t}

\tchain service-LAUZTJTB-ns4/svc4/tcp/p80 {
\t\tmeta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.180.0.4 . 80, 1 : 10.180.0.5 . 80 }
\t}

\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {
\t\tmeta l4proto tcp dnat to 10.180.0.1:80
\t}
}
"""
IPTABLES = "-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X\n"


def test_an_nft_table_on_the_node_means_nftables_mode_whatever_iptables_holds():
    assert service_rules(IPTABLES, NFT, "172.30.0.41", 80, "tcp") == (
        "nftables: 172.30.0.41:80/tcp -> service-ULMVA6XW-ns1/svc1/tcp/p80, 1 endpoint(s): 10.180.0.1:80")


def test_endpoints_behind_a_numgen_map_and_behind_endpoint_chains():
    assert service_rules("", NFT, "172.30.0.44", 80, "tcp").endswith(
        "2 endpoint(s): 10.180.0.4:80, 10.180.0.5:80")
    assert service_rules("", NFT, "172.30.0.45", 80, "tcp").endswith(
        "2 endpoint(s): 10.180.0.3:80, 10.180.0.4:80")


def test_protocol_port_and_address_must_all_match():
    assert "172.30.0.4:53/udp -> service-ULMVA6XW" in service_rules("", NFT, "172.30.0.4", 53, "udp")
    for ip, port, proto in (("172.30.0.4", 80, "tcp"), ("172.30.0.41", 53, "tcp"), ("172.30.0.41", 80, "udp")):
        assert "has not programmed it" in service_rules("", NFT, ip, port, proto)


def test_no_endpoints_in_nftables_mode():
    assert service_rules("", NFT, "1.2.3.4", 80, "tcp") == (
        "nftables: 1.2.3.4:80/tcp is rejected: the Service has no endpoints")


def test_without_an_nft_table_iptables_is_read():
    assert service_rules(IPTABLES, "", "172.30.0.41", 80, "tcp").startswith(
        "iptables: 172.30.0.41:80/tcp -> KUBE-SVC-X")


# iptables-save on a node whose cilium-agent replaces kube-proxy: its own chains, no KUBE-.
CILIUM_IPTABLES = """*nat
:PREROUTING ACCEPT [0:0]
:CILIUM_POST_nat - [0:0]
:CILIUM_PRE_nat - [0:0]
-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat
COMMIT
*filter
:CILIUM_FORWARD - [0:0]
COMMIT
"""


def test_no_kube_proxy_and_a_cni_that_translates_services():
    assert service_rules(CILIUM_IPTABLES, "", "10.96.0.10", 53, "udp", proxy_mode="") == (
        "no kube-proxy rules on this cluster: Services are translated by the CNI (cilium)")


def test_kube_proxy_answering_or_its_rules_keep_the_kube_proxy_reading():
    # kube-proxy answers /proxyMode: its (missing) rules are the evidence, as before.
    assert "kube-proxy" in service_rules(CILIUM_IPTABLES, "", "10.96.0.10", 53, "udp", proxy_mode="iptables")
    assert not service_rules(CILIUM_IPTABLES, "", "10.96.0.10", 53, "udp",
                             proxy_mode="iptables").startswith("no kube-proxy rules on this cluster")
    # kube-proxy's chains beside cilium's (cilium without kube-proxy replacement).
    both = CILIUM_IPTABLES + IPTABLES
    assert service_rules(both, "", "172.30.0.41", 80, "tcp", proxy_mode="").startswith(
        "iptables: 172.30.0.41:80/tcp -> KUBE-SVC-X")


def test_no_kube_proxy_and_no_known_cni_says_what_it_said():
    plain = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"
    assert service_rules(plain, "", "10.96.0.10", 53, "udp", proxy_mode="").startswith(
        "iptables: no kube-proxy chains on this node")
    # Not asked (None): the line it always gave, even with cilium's chains.
    assert service_rules(CILIUM_IPTABLES, "", "10.96.0.10", 53, "udp").startswith(
        "iptables: no kube-proxy chains on this node")
