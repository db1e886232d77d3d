"""Run the narrowing probes (and, with --capture-packets, a capture) for one failed probe.

Called by the walk when a hop fails, in the test's own process. Nothing here
may turn a network FAILURE into an ERROR: a narrowing probe or a capture that
cannot run is reported as such inside the diagnosis.

The narrowing may start early (`begin`): the walk starts it beside a probe still
unanswered after walk.NARROW_EARLY_AFTER, so a failing test waits out one
timeout, not two (its attempts', then its narrowing's). A probe that then answers
leaves it unused: on a healthy path no probe of the walk's takes that long.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from kubernetes.client import ApiClient

from packetwalk.diagnose.blocking import CROSS_NODE, SAME_NODE, Findings, Seen
from packetwalk.diagnose.capture import Capture, CaptureResult
from packetwalk.diagnose.conclusion import conclude, through
from packetwalk.diagnose.dnsservers import Asked
from packetwalk.diagnose.dnsservers import conclude as conclude_dns
from packetwalk.diagnose.narrowing import (
    CLUSTER_IP,
    DNS_NODE,
    DNS_SERVER,
    EXTERNAL,
    NAME,
    OTHER_PROTOCOL,
    POD_IP,
    Attempt,
    Dialed,
    Step,
    dialed,
    plan,
)
from packetwalk.diagnose.policies import conclude_cell, on_path
from packetwalk.diagnose.policytext import PathPolicies
from packetwalk.diagnose.touched import Touched, touched
from packetwalk.families import IPV4, RECORD_TYPES, family_of, of_family
from packetwalk.inventory import Inventory, Pod
from packetwalk.probes import OK, Observation, ProbeError, Prober, Target
from packetwalk.records import DiagnosisRecord

SHOWN_PACKETS = 12  # in the failure message; the diagnosis entry keeps more


@dataclass
class Diagnosis:
    verdict: str
    bisection: list[str]
    policies: list[str]
    capture: CaptureResult | None = None
    notes: list[str] = field(default_factory=list)
    # What the narrowing saw, for blocking.decide (None: a policy cell's diagnosis,
    # which judges policies and runs no narrowing).
    findings: Findings | None = None

    def lines(self) -> list[str]:
        """The failure message's block."""
        out = [f"  bisection: {self.verdict}", *(f"    {line}" for line in self.bisection),
               f"    policies: {'; '.join(self.policies)}"]
        capture = self.capture
        if capture is None:
            return out
        if capture.skipped:
            return [*out, f"  capture:  skipped: {capture.skipped}"]
        out += [f"  capture:  {capture.case} (retried: {capture.retried})", f"    {capture.path}"]
        out += [f"    {line}" for line in capture.packets[:SHOWN_PACKETS]]
        if len(capture.packets) > SHOWN_PACKETS:
            out.append(f"    ... {len(capture.packets) - SHOWN_PACKETS} more in the diagnosis")
        out += [f"    service: {line}" for line in capture.service]
        out += [f"    pcap: {path}" for path in capture.pcaps]
        return out

    def record(self) -> DiagnosisRecord:
        """What the test's report carries (records.DIAGNOSIS)."""
        record = DiagnosisRecord(self.verdict, tuple(self.bisection), tuple(self.policies))
        capture = self.capture
        if capture is not None and capture.skipped:
            return replace(record, capture=f"skipped: {capture.skipped}")
        if capture is not None:
            return replace(record, capture=capture.case, capture_path=capture.path,
                           retried=capture.retried, packets=tuple(capture.packets),
                           pcaps=tuple(capture.pcaps), service=tuple(capture.service))
        return record


def _key(attempt: Attempt) -> tuple:
    """What a narrowing depends on: the attempt without its retry (a closure per try)."""
    return (attempt.src.name, attempt.to, attempt.name, attempt.large, attempt.external,
            attempt.family)


class Diagnoser:
    """Bound to one test: `note` leaves the diagnosis record on its report.
    `capture` is None without --capture-packets; `unavailable` says why capture cannot run."""

    def __init__(self, inventory: Inventory, prober: Prober, api: ApiClient | None,
                 note: Callable[[DiagnosisRecord], None], test: str, capture: Capture | None = None,
                 unavailable: str = ""):
        self.inventory, self.prober, self.api = inventory, prober, api
        self.note, self.test = note, test
        self.capture, self.unavailable = capture, unavailable
        # Narrowings begun early, by the attempt they narrow (_key): each step's future.
        self._begun: dict[tuple, list[Future]] = {}
        self._lock = threading.Lock()

    def begin(self, attempt: Attempt) -> None:
        """Start narrowing `attempt` down now, in the background; `diagnose` takes the
        steps' results if the attempt fails. Once per attempt (a pin's tries are one)."""
        with self._lock:
            key = _key(attempt)
            if key in self._begun:
                return
            steps = plan(attempt, self.inventory)
            pool = ThreadPoolExecutor(max_workers=max(1, len(steps)))
            record = RECORD_TYPES[attempt.family or IPV4]
            self._begun[key] = [pool.submit(self._run, step, record) for step in steps]
            pool.shutdown(wait=False)  # its threads end with their probes

    def _steps_run(self, attempt: Attempt) -> list[tuple[Step, Observation | None, str]]:
        """The narrowing's steps and what each saw: begun early, or run now, at once
        (each narrowing probe may take its full timeout)."""
        with self._lock:
            begun = self._begun.pop(_key(attempt), None)
        if begun is not None:
            return [future.result() for future in begun]
        steps = plan(attempt, self.inventory)
        with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
            record = RECORD_TYPES[attempt.family or IPV4]
            return list(pool.map(lambda step: self._run(step, record), steps))

    def _run(self, step: Step, record: str = "A") -> tuple[Step, Observation | None, str]:
        """`record`: what a DNS server is asked for, in the failed probe's family."""
        try:
            if step.kind == DNS_SERVER:
                return step, self.prober.resolve(step.src.source(), step.name or "", step.to.protocol,
                                                 server=step.to, record=record), ""
            return step, self.prober.request(step.src.source(), step.to, "hostname"), ""
        except ProbeError as exc:
            return step, None, str(exc).splitlines()[0]

    def diagnose(self, attempt: Attempt, seen: Observation) -> Diagnosis:
        ran = self._steps_run(attempt)
        target = dialed(attempt, self.inventory)
        kind = target.kind
        bisection = [f"{kind} {attempt.to.label()} from {attempt.src.name}: {seen.cls} (failed)"]
        results = []
        seen_steps = []
        for step, observed, error in ran:
            if observed is None:
                bisection.append(f"{step.label}: could not run ({error})")
                continue
            bisection.append(f"{step.label}: {observed.cls}")
            results.append((step.kind, step.change, observed.cls == OK))
            seen_steps.append(Seen(step.kind, step.change, observed.cls == OK,
                                   self._placement(step.src.node, step.to.ip),
                                   step.to.protocol, f"{step.label}: {observed.cls}"))
        servers = self._servers(target)
        sentence = self._dns_servers(attempt, ran, results) or conclude(
            kind, results, attempt.src.node, attempt.to.protocol, through(target))
        findings = Findings(kind, seen.cls, attempt.to.protocol,
                            self._placement(attempt.src.node, attempt.to.ip), tuple(seen_steps),
                            self._dns_servers_answer(attempt, ran))
        diagnosis = Diagnosis(
            verdict=sentence,
            bisection=bisection,
            policies=list(self._policies(attempt, touched(attempt, self.inventory)).lines),
            findings=findings)
        return self._finish(diagnosis, attempt, servers, target)

    def _placement(self, src_node: str, ip: str) -> str:
        """SAME_NODE or CROSS_NODE for a probe from `src_node` to `ip` (a pod's, a
        node's, or a ClusterIP whose backends share one node); "" when unknown."""
        nodes = {pod.node for pod in self.inventory.pods.values() if ip in pod.ips}
        for service in self.inventory.services.values():
            if ip in service.cluster_ips:
                nodes = {self.inventory.pods[name].node for name in service.backends
                         if name in self.inventory.pods}
        if len(nodes) != 1:
            return ""
        return SAME_NODE if nodes == {src_node} else CROSS_NODE

    def _dns_servers_answer(self, attempt: Attempt, ran: list) -> bool | None:
        """A lookup through the DNS Service: did every DNS server pod answer directly
        over its transport? None for anything else, or when none was asked."""
        if attempt.name is None or attempt.to.port != 53 or any(
                attempt.to.ip in d.ips for d in self.inventory.dns_servers):
            return None
        asked = [observed is not None and observed.cls == OK for step, observed, _ in ran
                 if step.kind == DNS_SERVER and step.change == ""]
        return all(asked) if asked else None

    def _dns_servers(self, attempt: Attempt, ran: list, results: list) -> str | None:
        """A failed lookup: what asking each DNS server pod directly showed."""
        answers = {(step.to.ip, step.change): observed is not None and observed.cls == OK
                   for step, observed, _ in ran if step.kind == DNS_SERVER}
        asked = [Asked(d.name, ip, d.node, answers[(ip, "")], answers.get((ip, OTHER_PROTOCOL)))
                 for d in self.inventory.dns_servers for ip in d.ips if (ip, "") in answers]
        node_of = {ip: pod.node for pod in self.inventory.pods.values() for ip in pod.ips}
        nodes = {node_of.get(step.to.ip, step.to.ip): observed is not None and observed.cls == OK
                 for step, observed, _ in ran if step.change == DNS_NODE}
        pods = [ok for kind, change, ok in results if kind in (POD_IP, CLUSTER_IP) and change == ""]
        direct = any(attempt.to.ip in d.ips for d in self.inventory.dns_servers)
        return conclude_dns(asked, nodes, attempt.src.node, attempt.to.protocol, direct,
                            all(pods) if pods else None)

    def diagnose_policy(self, attempt: Attempt, seen: Observation, expected: str,
                        server: Pod, family: str | None = None) -> Diagnosis:
        """A policy cell that came out wrong, while its policies are still applied.
        `family`: the cell's, when the run walks two (the conclusion names it)."""
        target = dialed(attempt, self.inventory)
        path = touched(attempt, self.inventory)
        if not path.servers and path.dns is None:
            # A port the inventory does not know (the policy server's alt port): the
            # cell names its pod.
            path = Touched(((server, attempt.to.port, attempt.to.protocol),), None)
        found = self._policies(attempt, path)
        diagnosis = Diagnosis(
            verdict=conclude_cell(expected, seen.cls, found, server.node, family),
            bisection=[(f"{target.kind} {attempt.to.label()} from {attempt.src.name}: "
                        f"{seen.cls}, expected {expected}")],
            policies=list(found.lines))
        return self._finish(diagnosis, attempt, [server], target)

    def _finish(self, diagnosis: Diagnosis, attempt: Attempt, servers: list[Pod],
                target: Dialed) -> Diagnosis:
        """The capture (when asked for), and the record on the test's report."""
        if self.capture is not None or self.unavailable:
            diagnosis.capture = self._capture(attempt, servers, target)
        self.note(diagnosis.record())
        return diagnosis

    def _policies(self, attempt: Attempt, path: Touched) -> PathPolicies:
        if self.api is None:
            return PathPolicies((), False, ())
        return on_path(self.api, attempt.src, path, self.inventory.dns_ip)

    def _servers(self, target: Dialed) -> list[Pod]:
        if target.pod is not None:
            return [target.pod]
        if target.service is not None:
            return [self.inventory.pods[n] for n in target.service.backends
                    if n in self.inventory.pods]
        return []

    def _capture(self, attempt: Attempt, servers: list[Pod], target: Dialed) -> CaptureResult:
        if self.capture is None or attempt.retry is None:
            return CaptureResult(skipped=self.unavailable or "this probe cannot be retried")
        to, service_ip = attempt.to, None
        if attempt.name is not None and to.port == 53 and not any(
                to.ip in d.ips for d in self.inventory.dns_servers):
            # A name lookup goes to the cluster DNS Service, whose pods are not the run's.
            to, servers = Target(self.inventory.dns_ip or "", 53, to.protocol, to.via), []
            service_ip = self.inventory.dns_ip
        elif attempt.name is not None and to.port == 53:
            servers = []  # one DNS server pod asked directly: not the run's, no capture there
        elif target.service is not None and target.kind in (CLUSTER_IP, NAME):
            service_ip = of_family(target.service.cluster_ips, attempt.family) or None
        # The capture is in the family of the address dialed: the test's, except a lookup
        # through the pod's resolver, which asks the DNS Service's address in resolv.conf
        # (its primary) whatever record the test wants (an IPv6 twin asks AAAA over IPv4).
        family = family_of(to.ip) or attempt.family
        try:
            return self.capture.around(self.test, attempt.src, servers, to, attempt.retry,
                                       service_ip, external=target.kind == EXTERNAL,
                                       family=family)
        except ProbeError as exc:
            return CaptureResult(skipped=f"capture failed: {str(exc).splitlines()[0]}")
