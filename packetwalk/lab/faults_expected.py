"""What the suites must report for each lab fault: the exact set of failing ids,
and the words the verdict must contain. Data, read by tests/selfcheck.

Placements on the lab: the client is on pw-worker; same-node servers are on
pw-worker, cross-node servers on pw-worker2; CoreDNS runs on the control plane.
A fault's set holds the hop it breaks and the hops that need that hop (DNS
through the kube-dns Service, policy cases that resolve names); every other
id must pass.
"""

from dataclasses import dataclass, field

from packetwalk.diagnose.packets import ANSWERED, NEVER_SEEN, NO_SERVER_SIDE, UNMASQUERADED

SUITES = ("suites",)


@dataclass(frozen=True)
class Expectation:
    node: str | None  # --node for per-node faults
    failing: frozenset[str]
    verdict: str  # a phrase the run's verdict must contain
    slice: str  # -k expression that re-checks the broken hops after heal
    # id -> (a phrase of its bisection, its capture case) under --capture-packets
    diagnosed: dict[str, tuple[str, str]] = field(default_factory=dict)


def ids(test: str, *params: str) -> set[str]:
    return {f"{test}[{p}]" for p in params} if params else {test}


BOTH = ("same-node-tcp", "same-node-udp", "cross-node-tcp", "cross-node-udp")
DNS_IDS = (ids("test_dns_service_name", *(f"{form}-{t}" for form in ("short", "namespace", "fqdn")
                                          for t in ("udp", "tcp")))
           | ids("test_dns_headless", "udp", "tcp") | ids("test_dns_connect_by_name", "tcp", "udp"))
# Policy cases whose cells resolve a name (deny-egress also checks that DNS is blocked
# for client-b, and first that it works).
POLICY_NEEDING_DNS = ids("test_network_policy", "deny-egress", "egress-only-dns")

# Probes from the vantage point (outside the cluster) have no pod to narrow down
# from: their failures carry no diagnosis.
UNDIAGNOSED = ("test_node_port_external_", "test_load_balancer", "test_ingress")

EXPECTED = {
    "dns-down": Expectation(
        None, frozenset(DNS_IDS | POLICY_NEEDING_DNS), "cluster DNS is broken", "dns or policy",
        diagnosed={"test_dns_service_name[short-udp]": ("cluster DNS is at fault", NO_SERVER_SIDE)}),
    # On the client's node: every Service path from the client breaks, DNS with it
    # (it is a Service too), and NodePorts that enter through that node.
    "kube-proxy-broken": Expectation(
        "pw-worker",
        frozenset(ids("test_cluster_ip", *BOTH)
                  | ids("test_cluster_ip_every_backend", "cross-node-tcp", "cross-node-udp")
                  | ids("test_source_ip_via_cluster_ip", *BOTH)
                  | ids("test_hairpin", "tcp", "udp")
                  | ids("test_node_port_on_server_node", "same-node-tcp", "same-node-udp")
                  | ids("test_node_port_on_other_node", "cross-node-tcp", "cross-node-udp")
                  | ids("test_node_port_external_cluster", "same-node", "cross-node")
                  | ids("test_node_port_external_local", "same-node")
                  | DNS_IDS | POLICY_NEEDING_DNS
                  | ids("test_network_policy", "default-deny-ingress",
                        "removing-policy-restores-traffic")),
        "Service translation (ClusterIP) is broken", "cluster_ip or dns or hairpin or node_port",
        diagnosed={"test_cluster_ip[cross-node-tcp]": ("ClusterIP fails, pod IPs answer", NEVER_SEEN)}),
    # pw-worker2 blocks NodePorts: what enters through it fails; east-west enters
    # through it from pw-worker's pods; the outside enters through pw-worker.
    "nodeport-blocked": Expectation(
        "pw-worker2",
        frozenset(ids("test_node_port_on_other_node", "same-node-tcp", "same-node-udp")
                  | ids("test_node_port_on_server_node", "cross-node-tcp", "cross-node-udp")),
        "NodePort is broken", "node_port",
        diagnosed={"test_node_port_on_server_node[cross-node-tcp]": ("NodePort fails, ClusterIP answers", NEVER_SEEN)}),
    # Other nodes lose the route to pw-worker2's pods: every path into them breaks,
    # same-node paths and everything on pw-worker still work.
    "cross-node-route": Expectation(
        "pw-worker2",
        frozenset(ids("test_pod_ip", "cross-node-tcp", "cross-node-udp")
                  | ids("test_source_ip_via_pod_ip", "cross-node-tcp", "cross-node-udp")
                  | ids("test_source_ip_via_cluster_ip", "cross-node-tcp", "cross-node-udp")
                  | ids("test_mtu", "cross-node-tcp", "cross-node-udp")
                  | ids("test_node_to_pod", "cross-node-tcp", "cross-node-udp")
                  | ids("test_cluster_ip", "cross-node-tcp", "cross-node-udp")
                  | ids("test_cluster_ip_every_backend", "cross-node-tcp", "cross-node-udp")
                  | ids("test_node_port_on_other_node", "cross-node-tcp", "cross-node-udp")
                  | ids("test_node_port_external_cluster", "cross-node")
                  # The policy server lives on pw-worker2.
                  | ids("test_network_policy", "default-deny-ingress", "allow-by-pod-selector",
                        "allow-by-namespace-selector", "allow-one-port", "deny-egress",
                        "egress-only-dns", "removing-policy-restores-traffic")),
        "pod network (PodIP) is broken across nodes only", "cross-node or policy",
        diagnosed={"test_pod_ip[cross-node-tcp]": ("cross-node fails, same-node answers", NEVER_SEEN)}),
    # Nothing blocks any more: every policy case sees OK where it expects a block.
    "policy-enforcer-down": Expectation(
        None,
        frozenset(ids("test_network_policy", "default-deny-ingress", "allow-by-pod-selector",
                      "allow-by-namespace-selector", "allow-one-port", "deny-egress",
                      "egress-only-dns", "removing-policy-restores-traffic")),
        "NetworkPolicy enforcement is broken", "policy",
        diagnosed={"test_network_policy[default-deny-ingress]": ("NetworkPolicy is not enforced", ANSWERED)}),
    # Every UDP hop, DNS over UDP (and so connecting by name, which resolves first),
    # and the policy cases that resolve names; TCP hops and DNS over TCP pass.
    "udp-dropped": Expectation(
        None,
        frozenset({
        "test_cluster_ip[cross-node-udp]",
        "test_cluster_ip[same-node-udp]",
        "test_cluster_ip_every_backend[cross-node-udp]",
        "test_dns_connect_by_name[tcp]",
        "test_dns_connect_by_name[udp]",
        "test_dns_headless[udp]",
        "test_dns_service_name[fqdn-udp]",
        "test_dns_service_name[namespace-udp]",
        "test_dns_service_name[short-udp]",
        "test_hairpin[udp]",
        "test_mtu[cross-node-udp]",
        "test_mtu[same-node-udp]",
        "test_network_policy[deny-egress]",
        "test_network_policy[egress-only-dns]",
        "test_node_port_on_other_node[cross-node-udp]",
        "test_node_port_on_other_node[same-node-udp]",
        "test_node_port_on_server_node[cross-node-udp]",
        "test_node_port_on_server_node[same-node-udp]",
        "test_node_to_pod[cross-node-udp]",
        "test_node_to_pod[same-node-udp]",
        "test_pod_ip[cross-node-udp]",
        "test_pod_ip[same-node-udp]",
        "test_pod_to_node[cross-node-udp]",
        "test_pod_to_node[same-node-udp]",
        "test_source_ip_via_cluster_ip[cross-node-udp]",
        "test_source_ip_via_cluster_ip[same-node-udp]",
        "test_source_ip_via_pod_ip[cross-node-udp]",
        "test_source_ip_via_pod_ip[same-node-udp]",
        }),
        "pod network (PodIP) is broken for udp only", "udp or dns",
        diagnosed={"test_pod_ip[cross-node-udp]": ("UDP fails, TCP to the same target answers",
                                                   NEVER_SEEN)}),
    "hairpin-off": Expectation(
        None, frozenset(ids("test_hairpin", "tcp", "udp")), "hairpin is broken", "hairpin",
        diagnosed={"test_hairpin[tcp]": ("ClusterIP fails, pod IPs answer", NEVER_SEEN)}),
    # Node links at 1400, frag-needed eaten: only full-size packets between nodes
    # vanish. Same-node paths never touch eth0; every other probe is small.
    "mtu-mismatch": Expectation(
        None, frozenset(ids("test_mtu", "cross-node-tcp", "cross-node-udp")),
        "path MTU is broken across nodes only", "mtu",
        diagnosed={"test_mtu[cross-node-udp]": ("the near-MTU payload does not", NEVER_SEEN)}),
    "egress-masquerade": Expectation(
        None, frozenset(ids("test_egress_nat", "same-node", "cross-node")),
        "egress NAT is broken", "egress",
        diagnosed={"test_egress_nat[cross-node]": ("from its node pw-worker2 it works", UNMASQUERADED)}),
}
