"""Vantage point, external target and cluster-fact parsing (pure parts)."""

from ipaddress import IPv4Network

import pytest

from packetwalk.aboutlab import LabInfo, LabNode
from packetwalk.offers import ingress_address
from packetwalk.report.facts import (
    cni_from_conflist,
    cni_from_names,
    proxy_mode_from_args,
    proxy_mode_from_config,
    proxy_mode_from_rules,
)
from packetwalk.vantage import (
    ExternalTarget,
    choose_vantage,
    default_targets,
    is_lab,
    parse_ip_list,
    parse_target,
    route_source,
)

# What the lab tells the engine (packetwalk/aboutlab.py), as the lab writes it.
LAB = LabInfo(kubeconfig="/var/lib/packetwalk/kubeconfig", cni="bridge",
              underlay=IPv4Network("10.250.0.0/24"), outside_netns="pw-outside",
              outside_host="198.51.100.10", outside_port=80,
              nodes=(LabNode("pw-worker", "pw-worker", "/x"),))


def test_is_lab_needs_the_outside_namespace_and_underlay_nodes():
    assert is_lab(LAB, ["10.250.0.11", "10.250.0.12"], netns_present=True)
    assert not is_lab(LAB, ["10.250.0.11", "192.168.1.5"], netns_present=True)
    assert not is_lab(LAB, ["10.250.0.11"], netns_present=False)


def test_vantage_is_the_outside_namespace_on_the_lab_only():
    lab = choose_vantage("auto", lab=LAB, root=True, hostname="h")
    assert lab.prefix == ("ip", "netns", "exec", "pw-outside") and lab.unusable is None
    assert "needs root" in choose_vantage("auto", lab=LAB, root=False, hostname="h").unusable
    assert choose_vantage("local", lab=LAB, root=True, hostname="h").prefix == ()
    assert choose_vantage("auto", lab=None, root=True, hostname="h").name == "h"


def test_targets():
    assert parse_target("203.0.113.7:8080") == ExternalTarget("203.0.113.7", 8080)
    assert parse_target("[2001:db8::1]:80") == ExternalTarget("2001:db8::1", 80)
    with pytest.raises(ValueError, match="expected host:port"):
        parse_target("example.org")
    assert default_targets(LAB) == (ExternalTarget("198.51.100.10", 80),)
    assert default_targets(None) == ()  # air-gapped: nothing hard-coded


def test_ip_lists():
    assert parse_ip_list("10.0.0.1, 10.0.0.2") == ("10.0.0.1", "10.0.0.2")
    assert parse_ip_list(None) is None
    with pytest.raises(ValueError):
        parse_ip_list("10.0.0.1,node-a")


def test_route_source():
    assert route_source("10.250.0.11 dev veth0 src 10.250.0.254 uid 0 \\    cache") == \
        "10.250.0.254"
    assert route_source("blackhole 10.0.0.1") is None


def test_ingress_address():
    assert ingress_address({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}) == \
        "lb.example"
    assert ingress_address({"loadBalancer": {}}) is None


def test_proxy_mode_sources():
    assert proxy_mode_from_config("kind: KubeProxyConfiguration\nmode: ipvs\n") == "ipvs"
    assert proxy_mode_from_config('mode: ""\n').startswith("iptables")
    assert proxy_mode_from_args(["kube-proxy", "--proxy-mode=nftables"]) == "nftables"
    assert proxy_mode_from_args(["kube-proxy", "--v=2"]) is None
    assert proxy_mode_from_rules("-A KUBE-SERVICES -j KUBE-NODEPORTS", "") == "iptables"
    assert proxy_mode_from_rules("", "table ip kube-proxy") == "nftables"
    assert proxy_mode_from_rules("", "") is None


def test_cni_hints():
    assert cni_from_names(["cilium", "cilium-envoy", "kube-proxy"]) == ["cilium"]
    conflist = '{"plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, ' \
               '{"type": "portmap"}]}'
    assert cni_from_conflist(conflist) == "bridge + host-local + portmap"
