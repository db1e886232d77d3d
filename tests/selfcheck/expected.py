"""What the suites must report for each lab fault: the exact set of failing ids,
the exact set of blocked ids with the layer each must name, and the words the
verdict must contain. Read by test_fault_localization.py, bench/faults.py and
bench/matrix.py. A fault that stops the control plane has no ids at all: the run
stops at session start (EXPECTED_AT_START, read by tests/lab/test_control_plane.py
and bench/matrix.py), as does one whose node's CNI gives no pod there a network
(EXPECTED_AT_START_ON_CNI, read by bench/matrix.py).

Placements on the lab: the client is on pw-worker; same-node servers are on
pw-worker, cross-node servers on pw-worker2; CoreDNS runs on the workers, one
replica on each (as kubeadm's anti-affinity spreads it).
A fault turns red the hop it breaks and the hops that need that hop (DNS
through the kube-dns Service, policy cases that resolve names); every other
id must pass. Of the red ids, `failing` are the broken layer's own (FAILED);
`blocked` are those above it whose narrowing sees it fail below them (an ERROR
"blocked: ..." naming it, packetwalk/diagnose/blocking.py).

The sets are derived by rules from the hop catalogue (packetwalk/hops.py), so
a new hop lands in the faults that break its layer without an edit here.
tests/unit/test_selfcheck_expected.py holds them against the typed-out sets
they replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from packetwalk.diagnose.packets import ANSWERED, NEVER_SEEN, NO_SERVER_SIDE, UNMASQUERADED
from packetwalk.hops import (
    BLOCKED,
    DNS,
    EGRESS_NAT,
    EXCEPT,
    EXTERNAL_NODE_PORT,
    HAIRPIN,
    HOPS,
    NAMED_PORT,
    NODE_PORT,
    PATH_MTU,
    POD_IP_BLOCK,
    POD_NETWORK,
    POLICY_CASES,
    POLICY_LAYER,
    SCTP,
    SERVICE,
    Hop,
    Layer,
    params,
    preconditions,
)
from packetwalk.netfacts import IGNORES_POD_IP_BLOCKS
from packetwalk.placement import Node, build_placements

SUITES = ("suites",)

# Probes from the vantage point (outside the cluster) have no pod to narrow down
# from: their failures carry no diagnosis.
UNDIAGNOSED = ("test_node_port_external_", "test_load_balancer", "test_ingress")

CLIENT_NODE, SECOND_NODE = "pw-worker", "pw-worker2"
# The lab's schedulable nodes as the suite places pods on them.
LAB_PLACEMENTS = build_placements([Node(CLIENT_NODE, "10.250.0.11", CLIENT_NODE),
                                   Node(SECOND_NODE, "10.250.0.12", SECOND_NODE)])


@dataclass(frozen=True)
class Case:
    """One test id of the catalogue, with its axes."""

    hop: Hop
    placement: str | None
    variant: str | None
    protocol: str | None

    @property
    def id(self) -> str:
        return self.hop.test_id(self.placement, self.variant, self.protocol)


def catalogue() -> list[Case]:
    """Every id the suites collect, as the plugin parametrizes them."""
    cases = []
    for hop in HOPS.values():
        names, values = params(hop, None)
        for param in values:
            axes = dict(zip(names, param.values, strict=True))
            cases.append(Case(hop, axes.get("placement"), axes.get("variant"),
                              axes.get("protocol")))
    return cases


CASES = catalogue()


# What the lab's kernel lacks: policy cases needing it skip there, in every run.
LAB_LACKS = frozenset({SCTP})


def runs_on_lab(case: Case) -> bool:
    """Not skipped on the lab: a policy case needing what the lab lacks never runs."""
    return case.hop.layer != POLICY_LAYER or POLICY_CASES[case.variant].needs not in LAB_LACKS


def ids(rule: Callable[[Case], bool]) -> frozenset[str]:
    return frozenset(case.id for case in CASES if rule(case) and runs_on_lab(case))


# ---------------------------------------------------------------- rules

def expects_answer(case: Case) -> bool:
    """A hop expecting a block still sees one when a layer breaks: never in a set."""
    return case.hop.expect != BLOCKED


def policy_through(case: Case, target: str | None = None, port: str | None = None) -> bool:
    """A NetworkPolicy case with a cell (in any phase, so in its baseline too, where
    every cell must be open) toward `target`, or on `port`."""
    if case.hop.layer != POLICY_LAYER:
        return False
    return any((target is None or cell.target == target) and (port is None or cell.port == port)
               for cell in POLICY_CASES[case.variant].every_cell)


def policy_relies_on(semantics: str) -> Callable[[Case], bool]:
    """The policy cases with a cell that flips on `semantics` (hops.EXCEPT, NAMED_PORT)."""
    return lambda case: (case.hop.layer == POLICY_LAYER
                         and semantics in POLICY_CASES[case.variant].relies_on)


# Connecting by name asks the pod's resolver (over UDP) first, whatever it connects over.
RESOLVER_HOPS = ("dns_connect_by_name",)


# Asks each DNS server pod by its pod IP: no Service on the way.
DIRECT_DNS_HOPS = ("dns_every_backend",)


def through_dns_service(case: Case) -> bool:
    """Resolves through the kube-dns Service: reaches a DNS server pod at random."""
    return resolves(case) and case.hop.name not in DIRECT_DNS_HOPS


def resolves(case: Case) -> bool:
    """Asks cluster DNS over the network: every DNS id with a transport (resolv.conf
    is only read), and the policy cases that resolve a name."""
    return (case.hop.layer == DNS and case.protocol is not None) or policy_through(case, "dns")


def entry_node(case: Case) -> str | None:
    """The node a NodePort is entered on, None for other hops. East-west by the hop;
    from outside the server's node, or for cross-node the other (OutsideWalk.entry_node)."""
    if case.hop.layer not in (NODE_PORT, EXTERNAL_NODE_PORT):
        return None
    placement = LAB_PLACEMENTS[case.placement or "same-node"]
    role = {"node_port_server_node": "server", "node_port_other_node": "other"}.get(
        case.hop.name, "other" if case.placement == "cross-node" else "server")
    return getattr(placement, role).name


def via_service(case: Case) -> bool:
    """Through a Service from the client's node: the Service hops, hairpin, DNS (the
    kube-dns Service) and the policy cases that dial a ClusterIP or a name."""
    return (SERVICE in (case.hop.layer, case.hop.reach_layer) or case.hop.layer == HAIRPIN
            or through_dns_service(case) or policy_through(case, "cluster-ip"))


def enters_on(node: str) -> Callable[[Case], bool]:
    return lambda case: entry_node(case) == node and expects_answer(case)


def to_pods_on_the_second_node(case: Case) -> bool:
    """Cross-node ids whose packets reach a server pod on pw-worker2 from another
    node: all but pod-to-node (it ends at the node), a NodePort entered on the
    server's own node, and egress (it leaves the cluster)."""
    return (case.placement == "cross-node" and expects_answer(case)
            and case.hop.name != "pod_to_node" and case.hop.layer != EGRESS_NAT
            and entry_node(case) in (None, CLIENT_NODE))


def layer_is(layer) -> Callable[[Case], bool]:
    return lambda case: case.hop.layer == layer


def undiagnosed(case: Case) -> bool:
    """From the vantage point: no narrowing, so nothing is ever seen below it."""
    return case.hop.test.startswith(UNDIAGNOSED)


def at_the_bottom(case: Case) -> bool:
    """A hop that stands on nothing: where it breaks, it fails."""
    return not preconditions(case.hop.name)


def blocked_by(layer: Layer, own: Callable[[Case], bool]) -> Callable[[Case], Layer | None]:
    """Every red id is blocked by `layer` but the broken layer's `own` ids and those
    without a narrowing, which fail."""
    return lambda case: None if own(case) or undiagnosed(case) else layer


# ---------------------------------------------------------------- expectations

@dataclass(frozen=True)
class Expectation:
    node: str | None  # --node for per-node faults
    fails: Callable[[Case], bool]  # the rule: which ids turn red
    verdict: str  # a phrase the run's verdict must contain
    slice: str  # -k expression that re-checks the broken hops after heal
    # id -> (a phrase of its bisection, its capture case under --capture-packets, or
    # None: not pinned, the bisection is checked without capture)
    diagnosed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Ids that may go either way under this fault, and why: never silently.
    may_fail: Callable[[Case], bool] = lambda case: False
    # A policy the diagnoses of `diagnosed` must name (namespace/name), if any.
    named_policy: str = ""
    # Of the red ids, which are blocked and by which layer (the one their error must
    # name); None: the id fails as its own layer's. Nothing is blocked by default.
    blocks: Callable[[Case], Layer | None] = lambda case: None

    @property
    def red(self) -> frozenset[str]:
        """Every id that must not pass: failing and blocked."""
        return ids(self.fails) - self.either_way

    @property
    def blocked(self) -> dict[str, Layer]:
        """Blocked id -> the layer its "blocked:" error must name."""
        return {case.id: layer for case in CASES
                if case.id in self.red and (layer := self.blocks(case)) is not None}

    @property
    def failing(self) -> frozenset[str]:
        """Exactly the broken layer's own ids (FAILED)."""
        return self.red - set(self.blocked)

    @property
    def either_way(self) -> frozenset[str]:
        """Ids that may pass, fail or be blocked under this fault."""
        return ids(self.may_fail)


BLOCKED_LINE = "blocked:"  # how a blocked test's error begins


def mismatches(expected: Expectation | Split, failed: set[str], errors: dict[str, str]) -> dict[str, list[str]]:
    """What a run under the fault got wrong, by kind; empty when exactly as expected.
    `failed`: the FAILED ids; `errors`: each ERROR id with its text. An error that is
    not "blocked:" is a broken probe, never a network verdict."""
    blocked = {test for test, text in errors.items() if text.startswith(BLOCKED_LINE)}
    found = {
        "missed": expected.failing - failed,
        "wrongly blamed": failed - expected.failing - expected.either_way,
        "not blocked": set(expected.blocked) - blocked,
        "wrongly blocked": blocked - set(expected.blocked) - expected.either_way,
        "blocked, not naming the layer": {test for test, layer in expected.blocked.items()
                                          if test in blocked and layer.name not in errors[test]},
        "errors": set(errors) - blocked,  # broken probes, not network verdicts
    }
    return {kind: sorted(tests) for kind, tests in found.items() if tests}


EXPECTED = {
    # The policy cases that resolve names fail with no policy applied: blocked by DNS.
    "dns-down": Expectation(
        None, resolves, "cluster DNS is broken", "dns or policy",
        diagnosed={"test_dns_service_name[short-udp]": ("cluster DNS is at fault", NO_SERVER_SIDE)},
        blocks=blocked_by(DNS, layer_is(DNS))),
    # kube-system locked down to itself, CoreDNS selected: every lookup from the run's
    # namespaces is denied, asked through the Service or of a DNS pod directly. The
    # diagnosis must name the policy (policies on the path: the DNS pods' too).
    "dns-policy": Expectation(
        None, resolves, "cluster DNS is broken", "dns or policy",
        # Capture not pinned: on the lab it wrote empty pcaps for these lookups while
        # tcpdump by hand on the node saw the query leave and the ICMP reject come back
        # (an open defect of the capture, noted in docs/failures.md).
        diagnosed={"test_dns_every_backend[cross-node-udp]": ("cluster DNS is at fault", None)},
        named_policy="kube-system/coredns-lockdown",
        blocks=blocked_by(DNS, layer_is(DNS))),
    # On the client's node: every Service path from the client breaks, DNS with it
    # (it is a Service too), and NodePorts that enter through that node. The Service
    # hops fail; what stands on them is blocked (its ClusterIP fails while its pods
    # answer, the DNS pods answer directly, a hairpin's Service fails from beside it,
    # the source IP's probe gets no answer at all); from outside nothing narrows.
    "kube-proxy-broken": Expectation(
        CLIENT_NODE, lambda c: via_service(c) or enters_on(CLIENT_NODE)(c),
        "Service translation (ClusterIP) is broken", "cluster_ip or dns or hairpin or node_port",
        diagnosed={"test_cluster_ip[cross-node-tcp]": ("ClusterIP fails, pod IPs answer", NEVER_SEEN)},
        blocks=blocked_by(SERVICE, layer_is(SERVICE))),
    # pw-worker2 blocks NodePorts: what enters through it fails; east-west enters
    # through it from pw-worker's pods; the outside enters through pw-worker.
    "nodeport-blocked": Expectation(
        SECOND_NODE, enters_on(SECOND_NODE), "NodePort is broken", "node_port",
        diagnosed={"test_node_port_on_server_node[cross-node-tcp]": ("NodePort fails, ClusterIP answers", NEVER_SEEN)}),
    # The same firewall for UDP only: the UDP ids entering through pw-worker2, and the
    # verdict names both the protocol and the node.
    "nodeport-udp-blocked": Expectation(
        SECOND_NODE, lambda c: enters_on(SECOND_NODE)(c) and c.protocol == "udp",
        "NodePort is broken for udp only, only through pw-worker2", "node_port",
        diagnosed={"test_node_port_on_server_node[cross-node-udp]": ("NodePort fails, ClusterIP answers",
                                                                   NEVER_SEEN)}),
    # Other nodes lose the route to pw-worker2's pods: every path into them breaks,
    # same-node paths and everything on pw-worker still work. The policy server
    # lives on pw-worker2.
    "cross-node-route": Expectation(
        SECOND_NODE, lambda c: to_pods_on_the_second_node(c) or layer_is(POLICY_LAYER)(c),
        "pod network (PodIP) is broken across nodes only", "cross-node or policy",
        diagnosed={"test_pod_ip[cross-node-tcp]": ("cross-node fails, same-node answers", NEVER_SEEN)},
        # ClientIP affinity pins the client to one backend, picked at random on the
        # first request: the one on pw-worker answers, the one on pw-worker2 does not.
        # So does the kube-dns Service for each lookup: the CoreDNS replica on
        # pw-worker answers, the one on pw-worker2 does not. Asked directly, the
        # replica across nodes fails every time (test_dns_every_backend[cross-node-*]).
        may_fail=lambda c: c.hop.name == "session_affinity" or (
            through_dns_service(c) and c.hop.layer == DNS),
        # The pod network across nodes fails (and node-to-pod with it: it stands on
        # nothing); everything else red stands on it and sees it fail below.
        blocks=blocked_by(POD_NETWORK, at_the_bottom)),
    # Nothing blocks any more: every policy case sees OK where it expects a block.
    "policy-enforcer-down": Expectation(
        None, layer_is(POLICY_LAYER), "NetworkPolicy enforcement is broken", "policy",
        diagnosed={"test_network_policy[default-deny-ingress]": ("NetworkPolicy is not enforced", ANSWERED)}),
    # Every UDP id, DNS over UDP (and so connecting by name, which resolves first),
    # and the policy cases that resolve names; TCP hops and DNS over TCP pass.
    # Blocked by the pod network: the rest, UDP lookups included (the run's server on
    # a DNS pod's node fails over UDP too). Connecting by name over TCP fails on its
    # own: its narrowing dials over TCP only, so its lookup's UDP loss is not seen.
    "udp-dropped": Expectation(
        None, lambda c: c.protocol == "udp" or c.hop.name in RESOLVER_HOPS
        or policy_through(c, "dns") or policy_through(c, port="udp"),
        "pod network (PodIP) is broken for udp only", "udp or dns",
        diagnosed={"test_pod_ip[cross-node-udp]": ("UDP fails, TCP to the same target answers",
                                                   NEVER_SEEN)},
        blocks=blocked_by(POD_NETWORK, lambda c: at_the_bottom(c) or (
            c.hop.name in RESOLVER_HOPS and c.protocol == "tcp"))),
    "hairpin-off": Expectation(
        None, layer_is(HAIRPIN), "hairpin is broken", "hairpin",
        diagnosed={"test_hairpin[tcp]": ("ClusterIP fails, pod IPs answer", NEVER_SEEN)}),
    # Node links at 1400, frag-needed eaten: only full-size packets between nodes
    # vanish. Same-node paths never touch eth0; every other probe is small.
    "mtu-mismatch": Expectation(
        None, lambda c: layer_is(PATH_MTU)(c) and c.placement == "cross-node",
        "path MTU is broken across nodes only", "mtu",
        diagnosed={"test_mtu[cross-node-udp]": ("the near-MTU payload does not", NEVER_SEEN)}),
    "egress-masquerade": Expectation(
        None, layer_is(EGRESS_NAT), "egress NAT is broken", "egress",
        diagnosed={"test_egress_nat[cross-node]": ("from its node pw-worker2 it works", UNMASQUERADED)}),
    # The enforcer treats ipBlock except entries as part of the CIDR: an excepted
    # address is admitted. Only the cases whose cells flip on except turn red.
    "policy-ignores-except": Expectation(
        None, policy_relies_on(EXCEPT), "NetworkPolicy enforcement is broken", "ipblock",
        diagnosed={"test_network_policy[ipblock-except]": ("NetworkPolicy is not enforced",
                                                          ANSWERED)}),
    # The enforcer drops the rules a named port resolves to: what a named port
    # allows stays closed. Numeric ports are untouched.
    "policy-ignores-named-ports": Expectation(
        None, policy_relies_on(NAMED_PORT), "NetworkPolicy enforcement is broken", "named-port",
        diagnosed={}),
}



def _through_the_cut_node_to_this_one(case: Case) -> bool:
    """A NodePort dialled on pw-worker2 for a backend beside the client on pw-worker."""
    return case.hop.layer == NODE_PORT and case.placement == "same-node" and enters_on(SECOND_NODE)(case)


_CUT = EXPECTED["cross-node-route"]
EXPECTED.update({
    # kube-router's BGP routes to pw-worker2's pods withdrawn by the other nodes
    # (pw-worker2 keeps its own): the pods behind it are cut off as cross-node-route
    # cuts them. Not yet measured on the lab (bench/matrix.py runs it there).
    "bgp-down": _CUT,
    # flanneld gone from pw-worker2 with its flannel.1: besides cross-node-route's ids,
    # pw-worker2 has lost its own routes to the other nodes' pods, so a NodePort on it
    # cannot forward to a backend on pw-worker. Those fail as NodePort, naming
    # pw-worker2: their narrowing asks the ClusterIP from the client, which answers.
    # Measured on the flannel lab (bench/faults.py flanneld-down, 2026-11-29).
    "flanneld-down": replace(
        _CUT, fails=lambda c: _CUT.fails(c) or _through_the_cut_node_to_this_one(c),
        blocks=lambda c: None if _through_the_cut_node_to_this_one(c) else _CUT.blocks(c)),
})


# ---------------------------------------------------------------- where a CNI differs

# The faults whose ids differ on a CNI from EXPECTED's (bridge, kube-router), measured.
EXPECTED_ON_CNI: dict[str, dict[str, Expectation]] = {
    "flannel": {
        # flannel.1 holds an address in its node's pod CIDR (10.244.N.0/32), and kube-proxy
        # masquerades what a NodePort on pw-worker2 forwards across nodes behind it: the
        # backend on pw-worker answers into pw-worker2's pod CIDR, the very route the fault
        # cut. So the NodePorts dialled on pw-worker2 for a backend beside the client fail
        # too, as NodePort naming pw-worker2, as under flanneld-down. On bridge and
        # kube-router the masquerade address is the node's own, which stays reachable.
        # Measured: bench/matrix.py, flannel/iptables, 2026-11-30 ("wrongly blamed 2" by
        # EXPECTED's rule, exactly these two).
        "cross-node-route": EXPECTED["flanneld-down"],
    },
    "cilium": {
        # Cilium's socket LB translates a pod's connect() to a NodePort as it does a
        # ClusterIP's, to the backend pod itself, whichever node the NodePort names: so
        # the NodePorts dialled on pw-worker2 for a backend there cross nodes from the
        # client's and are cut too, blocked by the pod network as the ClusterIP is.
        # From outside there is no socket: the NodePort is entered on its node as on
        # bridge. Measured: bench/matrix.py, cilium/none, 2026-11-30 ("wrongly blocked
        # 2" by EXPECTED's rule, exactly test_node_port_on_server_node[cross-node-*]).
        "cross-node-route": replace(_CUT, fails=lambda c: _CUT.fails(c) or (
            c.hop.layer == NODE_PORT and c.placement == "cross-node" and expects_answer(c))),
    },
}


def _skipping_pod_ip_blocks(expected: Expectation) -> Expectation:
    """On a CNI whose CIDR rules never select the endpoints it manages
    (netfacts.IGNORES_POD_IP_BLOCKS), the policy cases whose ipBlock holds pod IPs skip
    (PolicyWalk.unmet), under any fault: they are in no set."""
    skipped = policy_relies_on(POD_IP_BLOCK)
    return replace(expected, fails=lambda c: expected.fails(c) and not skipped(c))


def expected_on(cni: str, name: str) -> Expectation:
    """What `name` must show on the `cni` network."""
    expected = EXPECTED_ON_CNI.get(cni, {}).get(name) or EXPECTED[name]
    return _skipping_pod_ip_blocks(expected) if cni in IGNORES_POD_IP_BLOCKS else expected


# ---------------------------------------------------------------- one family of a dual-stack lab

def family_id(case: Case, family: str) -> str:
    """The case's id on a dual-stack lab (packetwalk/families.py, the id rule): a hop
    with a family runs as twins, its id ending in it; a hop without keeps its id."""
    return case.hop.test_id(case.placement, case.variant, case.protocol,
                            family if case.hop.by_family else None)


@dataclass(frozen=True)
class Split:
    """What a run must show, as mismatches() reads it: the FAILED ids, the blocked ids
    with the layer each must name, the ids that may go either way; and the ids that
    must pass (a broken family's twins in the other family)."""

    failing: frozenset[str]
    blocked: dict[str, Layer]
    either_way: frozenset[str]
    must_pass: frozenset[str] = frozenset()

    def within(self, ran: set[str] | frozenset[str]) -> Split:
        """The split of a run restricted (-k) to the ids `ran`."""
        return Split(self.failing & ran, {t: layer for t, layer in self.blocked.items() if t in ran},
                     self.either_way & ran, self.must_pass & ran)


@dataclass(frozen=True)
class OneFamily:
    """A fault that breaks one IP family of a dual-stack lab, as `expected` breaks the
    layer on a single-stack one: its rules read in `family`'s twins. Their twins in
    the other family pass, as does every id outside the rules. A red id of a hop
    without a family (a load balancer's or an Ingress's address: one the controller
    picks) may go either way: which family it dials is not the fault's business."""

    family: str
    other: str
    expected: Expectation
    node: str | None
    verdict: str  # a phrase the run's verdict must contain

    @property
    def split(self) -> Split:
        e = self.expected
        red = [case for case in CASES if case.id in e.red | e.either_way]
        familied = {case.id: family_id(case, self.family) for case in red if case.hop.by_family}
        return Split(
            failing=frozenset(familied[t] for t in e.failing if t in familied),
            blocked={familied[t]: layer for t, layer in e.blocked.items() if t in familied},
            either_way=frozenset(familied[t] for t in e.either_way if t in familied)
            | frozenset(case.id for case in red if not case.hop.by_family),
            must_pass=frozenset(family_id(case, self.other) for case in red
                                if case.hop.by_family and case.id in e.red))


# On a dual-stack lab (tests/lab/test_dual_stack.py runs it; bench/matrix.py runs
# IPv4 labs only): cross-node-route's ids in their -ipv6 twins, the same layers
# blocked, the -ipv4 twins passing. Measured 2026-11-29: 2 failed, 8 blocked, 26 passed.
EXPECTED_DUAL = {
    "cross-node-route-ipv6": OneFamily(
        "ipv6", "ipv4", EXPECTED["cross-node-route"], SECOND_NODE,
        "pod network (PodIP) is broken for IPv6 only, across nodes only"),
    # The lab masquerades both families (topology.EGRESS_NAT); the fault removes only
    # the IPv4 rule, so only the IPv4 egress twins fail (measured on the dual lab:
    # 2 failed, 10 passed of suites/north_south).
    "egress-masquerade": OneFamily(
        "ipv4", "ipv6", EXPECTED["egress-masquerade"], None,
        "egress NAT is broken for IPv4 only"),
}


# ---------------------------------------------------------------- the control plane down

# A stopped controller is not the network: the run must not get as far as a verdict.
# It stops at session start (packetwalk/stalls.py) with pytest's exit code for a
# setup error (ExitCode.USAGE_ERROR, what the plugin's UsageError gives) and one
# stderr line naming what it waited for and the likely component.
SETUP_ERROR_EXIT = 4

# How tests/lab/test_control_plane.py and bench/matrix.py run the suite under such a
# fault: east-west is enough (the stall is at bring-up, before any suite's own test),
# and the timeout leaves room for the bring-up's waits before it names the stall.
AT_START_ARGS = ("suites/east_west", "-n", "auto", "-q")
AT_START_TIMEOUT = 240


@dataclass(frozen=True)
class StopsAtStart:
    """What the one stderr line must name: what the run `awaited` (a word of the
    stall's first part) and the component it is `likely` to blame; `node`: --node for
    a per-node fault."""

    awaited: str
    component: str
    node: str | None = None


EXPECTED_AT_START = {
    "controller-manager-down": StopsAtStart("ServiceAccount", "kube-controller-manager"),
    "scheduler-down": StopsAtStart("scheduling", "kube-scheduler"),
}

# A CNI's agent gone from one node: the pods planned there never get a network, the
# rest start, and the run stops as above naming that node's CNI (stalls.py's node
# stall). Measured on the cilium lab (2026-11-30): before that stall every one of the
# 91 ids errored with the same 2,500-character line after 120 s.
EXPECTED_AT_START_ON_CNI = {
    "cilium-agent-down": StopsAtStart("pod sandboxes on pw-worker2", "the CNI on pw-worker2",
                                      node=SECOND_NODE),
}


def stop_mismatch(expected: StopsAtStart, returncode: int, stdout: str, stderr: str) -> str:
    """"" when a finished run stopped at session start as `expected` says; else what
    differed, in a few words ("; " between them)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    wrong = []
    if returncode != SETUP_ERROR_EXIT:
        wrong.append(f"exit {returncode}, not {SETUP_ERROR_EXIT}")
    if len(lines) != 1:
        wrong.append(f"{len(lines)} stderr lines, not 1")
    else:
        # Only a single line is read for its words: with more, which one is "the" line
        # is already wrong.
        if expected.awaited not in lines[0]:
            wrong.append(f"the line does not name {expected.awaited}")
        if f"likely {expected.component}" not in lines[0]:
            wrong.append(f"the line does not say 'likely {expected.component}'")
    if "Traceback" in stderr:
        wrong.append("a traceback")
    # Counts would mean tests ran: the run got past session start.
    if " passed" in stdout or " failed" in stdout:
        wrong.append("passed/failed counts on stdout")
    return "; ".join(wrong)


# ---------------------------------------------------------------- intermittent faults

# A fault that makes a layer intermittent is judged over many attempts, not by a set of
# ids: which ids above the lossy layer fail (as flaky) and which are blocked depends on
# what their narrowing's single probes happened to see, and both are right. Read by
# tests/selfcheck/test_flaky.py and bench/matrix.py.
@dataclass(frozen=True)
class Flaky:
    """How a run under an intermittent fault must read: run `paths` with `-k select`
    and `--attempts attempts`; the `lowest` ids fail as flaky with a failed-attempt
    count in `likely`; every failure is flaky, every error a "blocked:" line; some id
    starting with `passes` passes; the verdict starts with `verdict` and counts attempts."""

    paths: tuple[str, ...]
    select: str
    attempts: int
    lowest: tuple[str, ...]
    likely: range
    passes: str
    verdict: str

    def args(self) -> tuple[str, ...]:
        """The run's options beside its paths (the self-check's --policy-timeout too)."""
        return ("-k", self.select, "--attempts", str(self.attempts), "--policy-timeout", "8")


EXPECTED_FLAKY = {
    # Half of the UDP datagrams to pods are lost (the `statistic` match). East-west's UDP
    # ids only: the TCP ones prove nothing here and would double the run. Binomial(20,
    # 0.5): P(k < 3 or k > 17) is about 4 in 10,000 per cell. DNS (port 53) is untouched.
    # Only UDP is selected, so the verdict's scope has no protocol in it.
    "udp-lossy": Flaky(("suites/east_west",), "udp", 20,
                       ("test_pod_ip[same-node-udp]", "test_pod_ip[cross-node-udp]"),
                       range(3, 18), "test_dns_",
                       "pod network (PodIP) is flaky on every placement"),
}


def flaky_mismatch(expected: Flaky, passed: set[str], failed: set[str], flaky: set[str],
                   failed_attempts: dict[str, int], errors: dict[str, str], verdict: str) -> str:
    """"" when a run under an intermittent fault reads as `expected` says; else what
    differed, in a few words ("; " between them)."""
    wrong = []
    if not passed | failed:
        wrong.append("no test passed or failed")
    for tid in expected.lowest:
        if tid not in failed or tid not in flaky:
            wrong.append(f"{tid} did not fail as flaky")
        elif failed_attempts.get(tid) not in expected.likely:
            wrong.append(f"{tid} failed {failed_attempts.get(tid)} of {expected.attempts} attempts, "
                         f"not {expected.likely.start}-{expected.likely.stop - 1}")
    if failed - flaky:
        wrong.append(f"read broken, not flaky: {', '.join(sorted(failed - flaky))}")
    unblocked = sorted(tid for tid, text in errors.items() if not text.startswith(BLOCKED_LINE))
    if unblocked:
        wrong.append(f"errors not blocked: {', '.join(unblocked)}")
    if not any(tid.startswith(expected.passes) for tid in passed):
        wrong.append(f"no {expected.passes}* id passed")
    if not verdict.startswith(expected.verdict) or "attempts failed" not in verdict:
        wrong.append(f"verdict {verdict[:120]!r}")
    return "; ".join(wrong)
