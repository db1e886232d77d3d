"""NetworkPolicy cases: apply policies, poll the truth table until it holds, change, remove.

Enforcement is asynchronous (the policy controller watches and reprograms),
so every transition is polled, bounded, before the cells are judged:
baseline (no policy: every cell open), with the policies, after each change
(a policy updated in place, a pod or namespace relabelled), and after removal.
How long each change took to be enforced is measured and recorded.

A case runs in one lane (inventory.POLICY_LANES): a policy server and its
clients that only that lane's policies select. The lane is the case's own while
it runs (fixtures/policy.py), so cases in other lanes run at the same time; only
the policy pods are ever selected, so the other tests are not disturbed either.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from string import Template

from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api
from kubernetes.client.rest import ApiException

from packetwalk import verdict
from packetwalk.attempts import settled
from packetwalk.cluster import API_TIMEOUT
from packetwalk.diagnose.blocking import CROSS_NODE, SAME_NODE, Blocked, decide_baseline
from packetwalk.diagnose.diagnoser import Diagnoser, Diagnosis
from packetwalk.diagnose.narrowing import CLUSTER_IP, NAME, POD_IP, Attempt
from packetwalk.families import IPV4, RECORD_TYPES, family_of, host_cidr
from packetwalk.families import NAMES as FAMILY_NAMES
from packetwalk.hops import (
    APPLY,
    DELETE,
    EXPECTED_CLASSES,
    HOPS,
    LABEL_NAMESPACE,
    LABEL_POD,
    POD_IP_BLOCK,
    POLICY_PORTS,
    SCTP,
    UPDATE,
    Cell,
    Change,
    PolicyCase,
)
from packetwalk.inventory import Inventory, Pod, policy_pod_name, policy_service_name
from packetwalk.netfacts import (
    IGNORES_POD_IP_BLOCKS,
    LINKS_SCRIPT,
    NodeEvidence,
    agents_from_node,
    parse_links,
)
from packetwalk.options import DEFAULT_POLICY_TIMEOUT
from packetwalk.probes import Observation, ProbeError, Prober, Target
from packetwalk.records import DiagnosisRecord, ProbeRecord
from packetwalk.runs import Run
from packetwalk.waiting import WaitTimeout, wait_for
from packetwalk.walk import HopBlocked, HopFailure, concurrently, evidence, shown
from packetwalk.workloads import MANIFESTS, create, policy_objects

CONVERGE_TIMEOUT = DEFAULT_POLICY_TIMEOUT  # seconds a policy change may take (--policy-timeout)
# Once two cases of a family have seen their policies block nothing they should (no
# enforcement in that family at all: kube-router v2.1.0 polices no IPv6 on the
# dual-stack lab), the family's later cases are polled this long, not 20 s each.
UNENFORCED_TIMEOUT = 4
# Once a lane's baseline (no policy at all) has failed in a run, what the lane's cells
# stand on is broken: a later baseline of the lane whose blocked cell no longer fails
# the same way is polled this long, not the whole --policy-timeout. (One that still
# fails it is blocked at once: LaneBlock.)
BLOCKED_BASELINE_TIMEOUT = 4
# A baseline (no policy) can be wrong for a moment only while the enforcer still undoes
# the lane's own last changes (its policies removed, its labels restored), which
# --policy-timeout bounds. So a baseline is polled until --policy-timeout has passed
# since the lane last changed (any worker), and at least this long (a lost packet's
# retry): a lane's first case, whose lane no case has changed, no longer polls a path
# fault for the whole 20 s (25 s each under kube-proxy-broken, one per lane).
QUIET_BASELINE_TIMEOUT = 4
UNENFORCED_CASES = 2
POLL_INTERVAL = 0.25
# A blocked TCP cell is decided by the first definite answer (kube-router rejects:
# REFUSED at once) or, where the enforcer drops, by this short connect timeout.
DENY_TIMEOUT = 2
HOP = HOPS["network_policy"]
# /proc/net/sctp exists in a network namespace only when the kernel has SCTP.
SCTP_CHECK = "test -e /proc/net/sctp && echo yes || echo no"
BASELINE = "without any policy (baseline)"
MERGE_PATCH = "application/merge-patch+json"
REMOVED = "after removing the policies"


@dataclass(frozen=True)
class LaneBlock:
    """A lane's baseline seen blocked: the case, the cell narrowed, in which family,
    and what blocked it. The fixture hands these between the run's workers as JSON
    lines in the lane's marker file, one per narrowed cell (to_json, from_json)."""

    case: str
    cell: tuple[str, str, str]  # Cell.path: source, target, port
    family: str | None
    blocked: Blocked
    cls: str  # how the cell failed (a later case is blocked at once only by the same)
    # The narrowing's conclusion and bisection (none without the diagnosis): each
    # later case's report carries them, saying where they were seen.
    verdict: str = ""
    bisection: tuple[str, ...] = ()

    def to_json(self) -> str:
        b = self.blocked
        return json.dumps({"case": self.case, "cell": list(self.cell), "family": self.family,
                           "hop": b.hop.name, "placement": b.placement, "protocol": b.protocol,
                           "shown": b.shown, "blocked_family": b.family, "cls": self.cls,
                           "verdict": self.verdict, "bisection": list(self.bisection)})

    @staticmethod
    def from_json(text: str) -> LaneBlock | None:
        """None for anything but a whole record (the file is rewritten whole, never
        appended: anything else is a line cut short, or another version's marker)."""
        try:
            d = json.loads(text)
            return LaneBlock(d["case"], tuple(d["cell"]), d["family"],
                             Blocked(HOPS[d["hop"]], d["placement"], d["protocol"], d["shown"],
                                     d["blocked_family"]), d["cls"], d["verdict"],
                             tuple(d["bisection"]))
        except (ValueError, KeyError, TypeError):
            return None


class PolicyWalk:
    def __init__(self, api: ApiClient, inventory: Inventory, prober: Prober,
                 record: Callable[[ProbeRecord], None], timeout: float = CONVERGE_TIMEOUT,
                 diagnoser: Diagnoser | None = None, lane: str = "1", attempts: int = 1,
                 lane_blocks: tuple[LaneBlock, ...] = (),
                 on_blocked: Callable[[LaneBlock], None] | None = None, family: str | None = None,
                 family_in_id: bool = False,
                 on_unenforced: Callable[[str], None] | None = None, unenforced: bool = False,
                 lane_changed: float | None = None,
                 on_change: Callable[[float], None] | None = None):
        self.api, self.inventory, self.prober = api, inventory, prober
        self.attempts = attempts  # per cell, once its phase has held (--attempts)
        self.run = Run(inventory.run_id)
        self._record = record
        self.timeout = timeout
        # The lane's baseline was blocked in earlier cases of the run (the fixture keeps
        # every cell they narrowed, per lane, for every worker): this case probes one
        # such cell of its own alone first, and the same failure is not polled or
        # narrowed again (_converge, _blocked). Every narrowed cell is kept, not the
        # last only: cases alternate between client-a's and client-b's cells, and
        # with one remembered each alternation polled and narrowed anew (~9.5 s a case,
        # 7 of 27 cases under cross-node-route).
        # `on_blocked` is told when this case's baseline is blocked and narrowed.
        self.lane_blocks = lane_blocks
        self.on_blocked = on_blocked
        # Called with the case's name when its policies blocked none of the cells they
        # should; `unenforced`: earlier cases of this family did (UNENFORCED_TIMEOUT).
        self.on_unenforced = on_unenforced
        self.unenforced = unenforced
        if unenforced:
            self.timeout = min(self.timeout, UNENFORCED_TIMEOUT)
        self.diagnoser = diagnoser  # None: the wrong cells as observed, no narrowing
        self.lane = lane
        # When the lane's policies or labels last changed in this run (time.time(), any
        # worker; None: never), and who is told before each change of this case's:
        # a baseline is polled until --policy-timeout has passed since then
        # (baseline_timeout). Told before the change, so a worker killed mid-change
        # still leaves the next case its full wait.
        self.lane_changed = lane_changed
        self.on_change = on_change
        # The IP family the case walks (a dual-stack run's axis), or None: the primary.
        self.family = family
        # Records carry the family only where ids do (a dual-stack run): the run's
        # verdict then says "for IPv6 only" when the IPv4 twins passed.
        self.record_family = family if family_in_id else None
        self._policies: list[str] = []  # the case's policies, as applied (for messages)

    # ------------------------------------------------------------ the case

    def unmet(self, case: PolicyCase) -> str | None:
        """Why the cluster cannot run this case (a skip reason), or None."""
        if case.needs == SCTP:
            return self.sctp_missing()
        if POD_IP_BLOCK in case.relies_on:
            return self.pod_ip_blocks_ignored()
        return None

    def pod_ip_blocks_ignored(self) -> str | None:
        """On a node whose CNI documents that it never matches its pods by ipBlock
        (netfacts.IGNORES_POD_IP_BLOCKS), a case whose ipBlock names pod IPs cannot tell
        enforcement from that choice: the reason to skip it, as the upstream e2e's
        skip lists do. Told by the policy server's node's links, read from the run's
        hostNetwork pod there; without one, or unread, the case runs."""
        node = self.pod("server").node
        host = self.inventory.ready_on("host", node)
        if host is None:
            return None
        try:
            text = self.prober.read(host.source(), ["sh", "-c", LINKS_SCRIPT], "the node's links")
        except ProbeError:
            return None
        agents = agents_from_node(NodeEvidence(links=parse_links(text)), {})
        cni = next((a.cni for a in agents if a.cni in IGNORES_POD_IP_BLOCKS), None)
        if cni is None:
            return None
        what, where = IGNORES_POD_IP_BLOCKS[cni]
        return (f"node {node} runs {cni} (its links show it): {what}, {where}), "
                "and the API means ipBlock for addresses outside the cluster; this case's "
                "ipBlock names pod IPs, so it cannot tell enforcement apart there")

    def sctp_missing(self) -> str | None:
        """Without SCTP in the kernel an SCTP rule may fail to program at all (and take
        the enforcer's whole sync with it): the case is skipped, saying so."""
        for role in ("server", "client-a"):
            pod = self.pod(role)
            text = self.prober.read(pod.source(), ["sh", "-c", SCTP_CHECK], "whether SCTP exists")
            if text.strip() != "yes":
                return (f"the kernel of node {pod.node} has no SCTP (/proc/net/sctp is absent "
                        f"in pod {pod.name}): SCTP policies cannot be programmed there")
        return None

    def check(self, name: str, case: PolicyCase) -> None:
        """The whole case; raises HopFailure with the truth table on a mismatch."""
        baseline = tuple(Cell(*path, "open") for path in case.paths)
        self._converge(name, BASELINE, baseline)
        labels: dict[tuple[str, str, str], str | None] = {}  # (kind, subject, key) -> before
        applied: list[str] = []
        try:
            started = time.monotonic()
            for policy in case.policies:
                applied.append(self.apply(policy))
            self._policies = list(applied)
            self._converge(name, f"with {', '.join(case.policies)}", case.cells, started)
            for step in case.steps:
                started = time.monotonic()
                for change in step.changes:
                    self.change(change, applied, labels)
                phase = Template(step.phase).safe_substitute(LANE=self.lane)
                self._converge(name, phase, step.cells, started)
        finally:
            started = time.monotonic()
            self.remove(applied)
            self._restore(labels)
        if case.then_removed:
            self._converge(name, REMOVED, case.then_removed, started)

    # ------------------------------------------------------------ changes

    def _changing(self) -> None:
        if self.on_change is not None:
            self.on_change(time.time())

    def apply(self, policy: str) -> str:
        """Create the lane's copy of a policy manifest; its name in the cluster."""
        obj = self._rendered(policy)
        self._changing()
        create(self.api, obj)
        return obj["metadata"]["name"]

    def change(self, change: Change, applied: list[str],
               labels: dict[tuple[str, str, str], str | None]) -> None:
        net = NetworkingV1Api(self.api)
        self._changing()
        if change.kind == APPLY:
            applied.append(self.apply(change.subject))
        elif change.kind == DELETE:
            name = self._rendered(change.subject)["metadata"]["name"]
            self.remove([name])
            applied.remove(name)
        elif change.kind == UPDATE:
            name = self._rendered(change.subject)["metadata"]["name"]
            body = self._rendered(change.to)
            body["metadata"]["name"] = name
            net.replace_namespaced_network_policy(name, self.run.namespace, body,
                                                  _request_timeout=API_TIMEOUT)
        elif change.kind in (LABEL_POD, LABEL_NAMESPACE):
            key, value = label_edit(Template(change.to).substitute(LANE=self.lane))
            remembered = (change.kind, change.subject, key)
            if remembered not in labels:
                labels[remembered] = self._label(change.kind, change.subject, key)
            self._set_label(change.kind, change.subject, key, value)
        else:
            raise ValueError(f"unknown policy change {change.kind!r}")
        self._policies = list(applied)

    def remove(self, names: list[str]) -> None:
        net = NetworkingV1Api(self.api)
        if names:
            self._changing()
        for name in names:
            try:
                net.delete_namespaced_network_policy(name, self.run.namespace,
                                                     _request_timeout=API_TIMEOUT)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def _restore(self, labels: dict[tuple[str, str, str], str | None]) -> None:
        """Every label a case changed goes back to what it was, so the lane is clean."""
        if labels:
            self._changing()
        for (kind, subject, key), value in labels.items():
            self._set_label(kind, subject, key, value)

    def _label(self, kind: str, subject: str, key: str) -> str | None:
        if kind == LABEL_POD:
            pod = self.pod(subject)
            found = CoreV1Api(self.api).read_namespaced_pod(pod.name, pod.namespace,
                                                            _request_timeout=API_TIMEOUT)
            return (found.metadata.labels or {}).get(key)
        listed = CoreV1Api(self.api).list_namespace(
            field_selector=f"metadata.name={self._namespace(subject)}",
            _request_timeout=API_TIMEOUT).items
        return (listed[0].metadata.labels or {}).get(key) if listed else None

    def _set_label(self, kind: str, subject: str, key: str, value: str | None) -> None:
        patch = {"metadata": {"labels": {key: value}}}  # None removes the label
        # Said explicitly: the client would pick JSON Patch, which wants a list.
        how = {"_content_type": MERGE_PATCH, "_request_timeout": API_TIMEOUT}
        core = CoreV1Api(self.api)
        if kind == LABEL_POD:
            pod = self.pod(subject)
            core.patch_namespaced_pod(pod.name, pod.namespace, patch, **how)
        else:
            core.patch_namespace(self._namespace(subject), patch, **how)

    def _namespace(self, subject: str) -> str:
        return self.run.peer_namespace if subject == "peer" else self.run.namespace

    def _rendered(self, policy: str) -> dict:
        return policy_objects(self.run, policy, self.lane, **self._values(policy))[0]

    def _values(self, policy: str) -> dict[str, str]:
        """The addresses a manifest asks for (ipBlock CIDRs), from the lane's pods, in
        the case's family."""
        text = (MANIFESTS / f"policy-{policy}.yaml").read_text()
        wanted = set(Template(text).get_identifiers())
        found: dict[str, Callable[[], str]] = {
            "CLIENT_B_HOST": lambda: host_cidr(self.ip(self.pod("client-b"))),
            "CLIENTS_CIDR": lambda: covering([self.ip(self.pod(r)) for r in
                                              ("client-a", "client-b", "client-peer")]),
            "SERVER_HOST": lambda: host_cidr(self.ip(self.pod("server"))),
            "TARGETS_CIDR": lambda: covering([self.ip(self.pod("server")), self.ip(self.other())]),
        }
        return {key: make() for key, make in found.items() if key in wanted}

    # ------------------------------------------------------------ probes

    def _in_family(self) -> str:
        return f"in {FAMILY_NAMES[self.family]} " if self.record_family else ""

    def ip(self, pod: Pod) -> str:
        """The pod's address in the case's family (its primary without one)."""
        return pod.ip_of(self.family)

    def pod(self, role: str) -> Pod:
        """A pod of this case's lane: server, client-a, client-b, client-peer."""
        return self.inventory.pod(policy_pod_name(role, self.lane))

    def other(self) -> Pod:
        """A server no policy selects, on the policy server's node."""
        return self.inventory.pod_on("server", self.pod("server").node)

    def target_pod(self, target: str) -> Pod:
        """The pod a cell's traffic ends at (the Service's or name's backend for those)."""
        if target == "other":
            return self.other()
        return self.pod("client-b" if target == "client-b" else "server")

    def attempt(self, cell: Cell) -> Attempt:
        """The cell's probe as the diagnoser wants it: who, to what, how to retry. Cases
        walk the case's family on a dual-stack cluster (each case runs once per family,
        its ipBlocks computed in it). Without one, a cell walks the family of its
        source's primary address, its target and its lookup included, so a cluster
        whose Services and pods list the families in another order does not mix them."""
        src = self.pod(cell.source)
        family = self.family or family_of(src.ip)
        protocol, number = POLICY_PORTS[cell.port]
        service = policy_service_name(self.lane)
        if cell.target == "dns":
            to, name = Target(service, 53, "udp", "cluster DNS"), service
        elif cell.target == "cluster-ip":
            svc = self.inventory.service(service)
            to, name = Target(svc.ip_of(family), svc.ports[cell.port], protocol,
                              f"Service {service}"), None
        else:
            pod = self.target_pod(cell.target)
            to, name = Target(pod.ip_of(family), number, protocol,
                              f"{pod.name} {cell.target}"), None
        return Attempt(src, to, name, retry=lambda: self.probe(cell), family=family)

    def probe(self, cell: Cell) -> Observation:
        attempt = self.attempt(cell)
        if attempt.name is not None:
            return self.prober.resolve(attempt.src.source(self.family), attempt.name, attempt.to.protocol,
                                       record=RECORD_TYPES[attempt.family or IPV4])
        if attempt.to.protocol == "udp":
            return self.prober.dial(attempt.src.source(self.family), attempt.to, "hostname")
        return self.prober.http(attempt.src.source(self.family), attempt.to, "hostname",
                                connect_timeout=DENY_TIMEOUT)

    def more(self, cell: Cell, times: int) -> list[Observation]:
        """`times` more attempts of a cell, at once: in one exec (ask_script's concurrent
        form) over HTTP and UDP, from kept shells side by side for a name."""
        attempt = self.attempt(cell)
        if attempt.name is not None:
            return concurrently(lambda: self.probe(cell), times)
        return self.prober.attempts(attempt.src.source(self.family), attempt.to, "hostname", times,
                                    connect_timeout=DENY_TIMEOUT)

    def attempted(self, cells: tuple[Cell, ...],
                  last: dict[Cell, Observation]) -> dict[Cell, Observation]:
        """Each cell judged on --attempts attempts: its last poll is the first, and the
        cells it did not settle make the rest, every cell at once. A blocked cell whose
        first attempt was refused is settled (attempts.settled): more attempts could only
        wait out timeouts. A drop is no definite answer: its cell makes the rest, which
        cost one DENY_TIMEOUT together, not one each."""
        if self.attempts <= 1:
            return dict(last)
        todo = [c for c in cells if not settled(last[c], EXPECTED_CLASSES[c.expect])]
        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
            rest = dict(zip(todo, pool.map(lambda c: self.more(c, self.attempts - 1), todo),
                            strict=True))
        return {c: shown([last[c], *rest.get(c, [])], EXPECTED_CLASSES[c.expect])
                for c in cells}

    # ------------------------------------------------------------ judging

    def _converge(self, case: str, phase: str, cells: tuple[Cell, ...],
                  since: float | None = None) -> None:
        """Poll until every cell holds (bounded); record each cell, with the time the
        change took to be enforced when `since` (when the change was made) is given."""
        last: dict[Cell, Observation] = {}
        held: list[float] = []
        judged: list[bool] = [False]  # whether `last` holds every attempt of its round

        def holds() -> bool:
            judged[0] = False
            with ThreadPoolExecutor(max_workers=len(cells)) as pool:
                last.update(zip(cells, pool.map(self.probe, cells), strict=True))
            if not all(_matches(cell, last[cell]) for cell in cells):
                if phase == BASELINE:
                    self._narrow_early(cells, last)
                return False
            # The phase holds when every attempt agrees, not the first probe alone: an
            # enforcer still settling (kube-router refused an allowed cell once, right
            # after it had let it through: a CI false failure) gets the rest of the
            # timeout; one that keeps failing some attempts is flaky at the end.
            last.update(self.attempted(cells, last))
            judged[0] = True
            if all(_matches(cell, last[cell]) for cell in cells):
                held.append(time.monotonic())
                return True
            return False

        # A lane already seen blocked: the cell it was blocked on is probed alone first.
        # Failing as it did, the case is blocked at once. Polling it for seconds, then
        # more attempts, then narrowing the same cell again, cost each later case ~9 s
        # (25 cases under a cross-node fault: minutes). Anything else (the cell answers,
        # or fails otherwise: the lane's previous case's policies may still be in force
        # for a moment after their removal) is polled, briefly.
        blocked_lane = phase == BASELINE and bool(self.lane_blocks)
        known = self._known_cell(cells) if blocked_lane else None
        still = False
        if known is not None:
            last[known] = self.probe(known)
            still = last[known].cls == self._block_of(known).cls
            if still:
                cells = (known,)  # the case's other cells add nothing to "blocked"
        if not still:
            timeout = self.timeout
            if phase == BASELINE:
                timeout = baseline_timeout(self.timeout, self.lane_changed, time.time())
            if blocked_lane:
                timeout = min(BLOCKED_BASELINE_TIMEOUT, timeout)
            try:
                wait_for(f"policy case {case} {phase}", holds, timeout=timeout,
                         interval=POLL_INTERVAL)
            except WaitTimeout:
                pass
        enforced = round(held[0] - since, 2) if held and since is not None else None
        if not judged[0] and not still:
            last = self.attempted(cells, last)
        words: dict[Cell, str] = {}
        for cell in cells:
            seen = last[cell]
            where = ProbeRecord(hop=HOP.name, protocol=POLICY_PORTS[cell.port][0], variant=case,
                                phase=phase, client_node=seen.src_node, family=self.record_family)
            record = where.observed(seen, _matches(cell, seen), EXPECTED_CLASSES[cell.expect])
            words[cell] = record.attempt_words()
            self._record(enforced_record(record, enforced))
        wrong = [cell for cell in cells if not _matches(cell, last[cell])]
        if wrong and phase == BASELINE:
            raise HopBlocked(self._blocked(case, wrong, last))
        blocked = {cell for cell in cells if cell.expect == "blocked"}
        if wrong and blocked and set(wrong) == blocked and self.on_unenforced is not None:
            self.on_unenforced(case)
        if wrong:
            message = self._failure(case, phase, cells, wrong, last, words)
            if self.diagnoser is not None:
                diagnosis = self._diagnose(self.diagnoser, wrong[0], last[wrong[0]])
                message += "\n" + "\n".join(diagnosis.lines())
            raise HopFailure(message)

    def _block_of(self, cell: Cell) -> LaneBlock | None:
        """What an earlier blocked case of the lane found narrowing this very cell in
        this case's family, or None."""
        return next((b for b in self.lane_blocks
                     if b.cell == cell.path and b.family == self.family), None)

    def _known_cell(self, cells: tuple[Cell, ...]) -> Cell | None:
        """The lowest-kind cell among `cells` that an earlier blocked case of the lane
        narrowed in this case's family, or None."""
        known = [cell for cell in cells if self._block_of(cell) is not None]
        return min(known, key=lambda c: CELL_KINDS.index(cell_kind(c))) if known else None

    def _narrowed_cell(self, wrong: list[Cell]) -> Cell:
        """The wrong baseline cell `_blocked` narrows: of the lowest kind, one an earlier
        case of the lane narrowed first (its finding is reused)."""
        return min(wrong, key=lambda c: (CELL_KINDS.index(cell_kind(c)), self._block_of(c) is None))

    def _narrow_early(self, cells: tuple[Cell, ...], last: dict[Cell, Observation]) -> None:
        """A baseline round came out wrong: the narrowing of the cell `_blocked` would
        narrow starts now, beside the rest of the polling and the attempts, instead of
        after them (a lane's first blocked case took 9.5 s, 3 of them its narrowing).
        Begun once per cell; unused if the baseline then holds, or another cell is
        narrowed in the end; none where an earlier case's finding will be reused."""
        if self.diagnoser is None:
            return
        cell = self._narrowed_cell([c for c in cells if not _matches(c, last[c])])
        known = self._block_of(cell)
        if known is None or last[cell].cls != known.cls:
            self.diagnoser.begin(self.attempt(cell))

    def _blocked(self, case: str, wrong: list[Cell], last: dict[Cell, Observation]) -> Blocked:
        """Cells failing with no policy at all: what they stand on fails, not policy.
        The cell of the lowest kind (pod IP, then ClusterIP, then name) is narrowed
        down and names what blocks the case, unless an earlier case of the lane
        narrowed that very cell in this family: its finding stands, with this case's
        own failed probe beside it."""
        # Of the lowest kind, a cell already narrowed first: its finding is reused.
        cell = self._narrowed_cell(wrong)
        known = self._block_of(cell)
        if known is not None and last[cell].cls == known.cls:
            again = (f"narrowed in case {known.case}, this case's own probe of that cell: "
                     f"{last[cell].cls}")
            if self.diagnoser is not None and known.verdict:
                self.diagnoser.note(DiagnosisRecord(known.verdict, (*known.bisection, again)))
            return replace(known.blocked, shown=f"{known.blocked.shown}; {again}")
        attempt = self.attempt(cell)
        diagnosis = None
        if self.diagnoser is not None:
            diagnosis = self.diagnoser.diagnose(attempt, last[cell])
        src, to = self.pod(cell.source), self.target_pod(cell.target)
        placement = SAME_NODE if src.node == to.node else CROSS_NODE
        blocked = decide_baseline(HOP, diagnosis.findings if diagnosis else None, cell_kind(cell),
                                  placement, attempt.to.protocol,
                                  f"{cell.source} -> {cell.target}:{cell.port}")
        if self.on_blocked is not None:
            self.on_blocked(LaneBlock(case, cell.path, self.family, blocked, last[cell].cls,
                                      diagnosis.verdict if diagnosis else "",
                                      tuple(diagnosis.bisection) if diagnosis else ()))
        return blocked

    def _diagnose(self, diagnoser: Diagnoser, cell: Cell, seen: Observation) -> Diagnosis:
        """A cell wrong while policies stand: which policies select the pods decides;
        it runs while they are applied. (Without policies a wrong cell is a path
        problem: `_blocked` narrows it down.)"""
        return diagnoser.diagnose_policy(self.attempt(cell), seen, cell.expect,
                                         self.target_pod(cell.target), self.record_family)

    def _failure(self, case: str, phase: str, cells: tuple[Cell, ...], wrong: list[Cell],
                 last: dict[Cell, Observation], words: dict[Cell, str]) -> str:
        why = (f"; not {CONVERGE_TIMEOUT:g}s: {UNENFORCED_CASES} earlier cases "
               f"{self._in_family()}blocked nothing they should" if self.unenforced else "")
        head = (f"network_policy [{case}] {phase}: {len(wrong)} of {len(cells)} cells wrong "
                f"after {self.timeout:g}s of polling (lane {self.lane}{why})")
        policies = f"{', '.join(self._policies) or 'none'} (namespace {self.run.namespace})"
        lines = [head, *truth_table(cells, wrong, last, words), f"  policies: {policies}"]
        first = last[wrong[0]]
        pod = self.inventory.pods.get(first.src_pod)
        namespace = pod.namespace if pod else self.run.namespace
        lines += evidence(first, namespace, limit=800)
        record = ProbeRecord(hop=HOP.name, cls=first.cls, client_node=first.src_node,
                             family=self.record_family)
        lines.append(f"  verdict:  {verdict.for_failure(record)}")
        return "\n".join(lines)


# ---------------------------------------------------------------- pure helpers

# What a cell dials, lowest layer first (narrowing kinds).
CELL_KINDS = (POD_IP, CLUSTER_IP, NAME)


def cell_kind(cell: Cell) -> str:
    return {"dns": NAME, "cluster-ip": CLUSTER_IP}.get(cell.target, POD_IP)


def baseline_timeout(timeout: float, changed: float | None, now: float) -> float:
    """Seconds to poll a baseline: until `timeout` (--policy-timeout) has passed since
    the lane last changed (`changed`; None: never in this run), at least
    QUIET_BASELINE_TIMEOUT, at most `timeout`."""
    if changed is None:
        return min(QUIET_BASELINE_TIMEOUT, timeout)
    return min(timeout, max(QUIET_BASELINE_TIMEOUT, changed + timeout - now))


def _matches(cell: Cell, seen: Observation) -> bool:
    return seen.cls in EXPECTED_CLASSES[cell.expect]


def truth_table(cells: tuple[Cell, ...], wrong: list[Cell], last: dict[Cell, Observation],
                words: dict[Cell, str] | None = None) -> list[str]:
    """Every cell as `client -> target:port  expected  observed`, the wrong ones marked
    FLAKY when only some of their attempts were wrong (`words`: attempts.CellResult.words)."""
    names = [f"{cell.source} -> {cell.target}:{cell.port}" for cell in cells]
    width = max(len(name) for name in names)
    lines = [f"  {'':5} {'cell':{width}}  {'expected':8}  observed"]
    for cell, name in zip(cells, names, strict=True):
        seen = last[cell]
        said = (words or {}).get(cell, "") if cell in wrong else ""
        mark = ("FLAKY" if said.startswith("flaky") else "WRONG") if cell in wrong else "ok"
        lines.append(f"  {mark:5} {name:{width}}  {cell.expect:8}  {seen.cls:8}  "
                     + (f"[{said}] " if said else "") + f"({seen.probe})")
    return lines


def enforced_record(record: ProbeRecord, seconds: float | None) -> ProbeRecord:
    """The cell's record with the time its change took to be enforced, in words too."""
    if seconds is None:
        return record
    words = f"policy enforced after {seconds:.1f} s"
    detail = f"{words}; {record.detail}" if record.detail else words
    return replace(record, enforced_after=seconds, detail=detail)


def covering(ips: list[str]) -> str:
    """The smallest IPv4/IPv6 network holding every address, as a CIDR string."""
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    bits = addresses[0].max_prefixlen
    for prefix in range(bits, -1, -1):
        network = ipaddress.ip_network((addresses[0], prefix), strict=False)
        if all(address in network for address in addresses):
            return str(network)
    raise ValueError(f"no network holds {ips}")  # unreachable: /0 holds everything


def label_edit(spec: str) -> tuple[str, str | None]:
    """'key=value' sets, 'key-' removes (value None), as kubectl label spells them."""
    if spec.endswith("-") and "=" not in spec:
        return spec[:-1], None
    key, sep, value = spec.partition("=")
    if not sep or not key:
        raise ValueError(f"a label change is key=value or key-, not {spec!r}")
    return key, value
