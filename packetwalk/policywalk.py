"""NetworkPolicy cases: apply policies, poll the truth table until it holds, remove.

Enforcement is asynchronous (the policy controller watches and reprograms),
so every transition is polled, bounded, before the cells are judged:
baseline (no policy: every cell open), with the policies, and after removal.
Only the dedicated policy pods are ever selected, so the other tests running
meanwhile are not disturbed; cases serialize against each other (runlock).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from kubernetes.client import ApiClient, NetworkingV1Api
from kubernetes.client.rest import ApiException

from packetwalk import verdict
from packetwalk.cluster import API_TIMEOUT
from packetwalk.diagnose.diagnoser import Diagnoser, Diagnosis
from packetwalk.diagnose.narrowing import Attempt
from packetwalk.hops import EXPECTED_CLASSES, HOPS, Cell, PolicyCase, next_step
from packetwalk.inventory import Inventory
from packetwalk.probes import Observation, Prober, Target
from packetwalk.records import ProbeRecord
from packetwalk.runs import Run
from packetwalk.waiting import WaitTimeout, wait_for
from packetwalk.walk import HopFailure, evidence
from packetwalk.workloads import create, policy_objects

CONVERGE_TIMEOUT = 20  # seconds a policy change may take to be enforced
HOP = HOPS["network_policy"]


class PolicyWalk:
    def __init__(self, api: ApiClient, inventory: Inventory, prober: Prober,
                 record: Callable[[ProbeRecord], None], timeout: float = CONVERGE_TIMEOUT,
                 diagnoser: Diagnoser | None = None):
        self.api, self.inventory, self.prober = api, inventory, prober
        self.run = Run(inventory.run_id)
        self._record = record
        self.timeout = timeout
        self.diagnoser = diagnoser  # None: the wrong cells as observed, no narrowing

    def check(self, name: str, case: PolicyCase) -> None:
        """The whole case; raises AssertionError with the truth table on a mismatch."""
        baseline = tuple(replace(cell, expect="open") for cell in case.cells)
        self._converge(name, "without any policy (baseline)", baseline)
        applied = self.apply(case.policies)
        try:
            self._converge(name, f"with {', '.join(case.policies)}", case.cells)
        finally:
            self.remove(applied)
        if case.then_removed:
            self._converge(name, "after removing the policies", case.then_removed)

    def apply(self, policies: tuple[str, ...]) -> list[str]:
        names = []
        for policy in policies:
            for obj in policy_objects(self.run, policy):
                create(self.api, obj)
                names.append(obj["metadata"]["name"])
        return names

    def remove(self, names: list[str]) -> None:
        net = NetworkingV1Api(self.api)
        for name in names:
            try:
                net.delete_namespaced_network_policy(name, self.run.namespace,
                                                     _request_timeout=API_TIMEOUT)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def attempt(self, cell: Cell) -> Attempt:
        """The cell's probe as the diagnoser wants it: who, to what, how to retry."""
        src = self.inventory.pod(f"policy-{cell.source}")
        if cell.target == "dns":
            to, name = Target("policy-server", 53, "udp", "cluster DNS"), "policy-server"
        else:
            service = self.inventory.service("policy-server")
            ip = (service.cluster_ip if cell.target == "cluster-ip"
                  else self.inventory.pod("policy-server").ip)
            to, name = Target(ip, service.ports[cell.port], "tcp", f"policy-server {cell.target}"), None
        return Attempt(src, to, name, retry=lambda: self.probe(cell))

    def probe(self, cell: Cell) -> Observation:
        attempt = self.attempt(cell)
        if attempt.name is not None:
            return self.prober.resolve(attempt.src.source(), attempt.name, attempt.to.protocol)
        return self.prober.http(attempt.src.source(), attempt.to, "hostname")

    def _converge(self, case: str, phase: str, cells: tuple[Cell, ...]) -> None:
        last: dict[Cell, Observation] = {}

        def holds() -> bool:
            with ThreadPoolExecutor(max_workers=len(cells)) as pool:
                last.update(zip(cells, pool.map(self.probe, cells), strict=True))
            return all(_matches(cell, last[cell]) for cell in cells)

        try:
            wait_for(f"policy case {case} {phase}", holds, timeout=self.timeout, interval=0.5)
        except WaitTimeout:
            pass
        for cell in cells:
            seen = last[cell]
            where = ProbeRecord(hop=HOP.name, protocol="tcp", variant=case, phase=phase,
                                client_node=seen.src_node)
            self._record(where.observed(seen, _matches(cell, seen),
                                        EXPECTED_CLASSES[cell.expect]))
        wrong = [cell for cell in cells if not _matches(cell, last[cell])]
        if wrong:
            message = self._failure(case, phase, cells, wrong, last)
            if self.diagnoser is not None:
                diagnosis = self._diagnose(self.diagnoser, wrong[0], last[wrong[0]], phase)
                message += "\n" + "\n".join(diagnosis.lines())
            raise HopFailure(message)

    def _diagnose(self, diagnoser: Diagnoser, cell: Cell, seen: Observation,
                  phase: str) -> Diagnosis:
        """Without policies a wrong cell is a path problem: the usual bisection. With
        them, which policies select the pods decides; it runs while they are applied."""
        if "baseline" in phase:
            return diagnoser.diagnose(self.attempt(cell), seen)
        return diagnoser.diagnose_policy(self.attempt(cell), seen, cell.expect,
                                              self.inventory.pod("policy-server"))

    def _failure(self, case: str, phase: str, cells: tuple[Cell, ...], wrong: list[Cell],
                 last: dict[Cell, Observation]) -> str:
        head = (f"network_policy [{case}] {phase}: {len(wrong)} of {len(cells)} cells wrong "
                f"after {self.timeout:g}s of polling")
        lines = [head]
        for cell in cells:
            seen = last[cell]
            mark = "WRONG" if cell in wrong else "ok   "
            lines.append(f"  {mark} {cell.source} -> {cell.target}:{cell.port}  "
                         f"expected {cell.expect}, observed {seen.cls}  ({seen.probe})")
        first = last[wrong[0]]
        pod = self.inventory.pods.get(first.src_pod)
        namespace = pod.namespace if pod else self.run.namespace
        lines += evidence(first, namespace, limit=800)
        record = ProbeRecord(hop=HOP.name, cls=first.cls, client_node=first.src_node)
        if "baseline" in phase:
            lines.append("  verdict:  traffic to the policy server fails with no policy at "
                         "all: not a policy problem")
            lines.append(f"  next:     {next_step(HOP.name, None, 'tcp')}")
        else:
            lines.append(f"  verdict:  {verdict.for_failure(record)}")
        return "\n".join(lines)


def _matches(cell: Cell, seen: Observation) -> bool:
    return seen.cls in EXPECTED_CLASSES[cell.expect]
