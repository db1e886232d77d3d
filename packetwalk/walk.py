"""The walk a test takes: pick the ends of a placement, probe one hop, expect.

A Walk is bound to one test (its hop, placement, variant, protocol and IP
family). Every address it hands out is of the test's family (None: a hop with
no family, which takes each end's primary address, as before families). It
hands out the pods and addresses of the placement, runs probes, judges the
answer (which backend, which source IP, intact payload), records every
observation for the report and the verdict, and words the failure: hop,
source, destination, expected, observed class, evidence, next hop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from packetwalk import attempts, verdict
from packetwalk.diagnose.blocking import Blocked, decide
from packetwalk.diagnose.narrowing import Attempt
from packetwalk.families import (
    IP_UDP_HEADERS,
    IPV4,
    IPV6,
    IPV6_MIN_MTU,
    NAMES,
    RECORD_TYPES,
    family_of,
)
from packetwalk.hops import Hop, next_step
from packetwalk.inventory import DnsServer, Inventory, NoAddress, Pod, Service
from packetwalk.outage import INTERVAL, watch_of
from packetwalk.placement import Node, Placement
from packetwalk.probes import (
    CORRUPTED,
    DNS,
    OK,
    PROBE_ERROR,
    TIMEOUT,
    WRONG_BACKEND,
    WRONG_SOURCE,
    Observation,
    ProbeError,
    Prober,
    Source,
    Target,
    host_of,
    judge_backends,
    parse_resolv_conf,
    payload_of,
)
from packetwalk.records import BlockedRecord, DiagnosisRecord, ProbeRecord, Record, WatchRecord
from packetwalk.watch import WatchResult
from packetwalk.watchcells import REQUEST

if TYPE_CHECKING:  # the diagnoser reads policies through the API: the walk only holds one
    from packetwalk.diagnose.diagnoser import Diagnoser, Diagnosis

UDP_ECHO_PREFIX = "echo "  # netexec's UDP echo request, part of the datagram
UDP_ECHO_MAX = 2048  # netexec reads at most this much of a datagram
WINDOW_LINES = 10  # a watched cell's failure lists this many outage windows
SILENCE_ALPHA = 1e-3  # below this chance, a silent backend is silent for a reason
# A probe still unanswered this long starts its narrowing beside it (Diagnoser.begin):
# a failing test then waits out one timeout, not its attempts' and then its
# narrowing's (about 3 s less each: the failing east-west run had 28 such tests).
# Healthy probes answer in well under it (p99 under 0.5 s on the lab, the slowest
# test's); a hop that expects no answer (TIMEOUT accepted) never starts one.
NARROW_EARLY_AFTER = 1.0


def silence_is_chance(answered: int, asked: int, backends: int) -> bool:
    """Could a live backend have missed every one of `asked` requests by chance? Each
    request answered with the rate seen (`answered` of `asked`) and went to one of
    `backends` evenly, so a live backend misses one with 1 - rate/backends, and all of
    them with that to the power `asked`. Above SILENCE_ALPHA, ask another round.

    A dead backend of 2 or 3 on a clean path is put down to chance after one round
    (0.75^16, 1 in 100; 0.78^24, 1 in 400) and costs a second round of its timeouts:
    one round of 8 x backends cannot tell it from a lossy path at 1 in 1000. Weighing
    the rate of the answering backends' share alone would save that round, but reads a
    live backend on a half-lossy path as dead about 1 in 220 (worked out on the
    binomial), four times SILENCE_ALPHA."""
    if asked == 0 or answered == 0:
        return False
    miss_one = 1 - answered / asked / backends
    return miss_one ** asked >= SILENCE_ALPHA


class HopFailure(AssertionError):
    """A hop did not behave: the message is the whole story, no traceback needed."""


class HopBlocked(HopFailure):
    """The hop's probe failed because a hop it stands on fails below it. The plugin
    reports it as an ERROR with the one line `str()` gives; the probe's records and
    the diagnosis (the bisection that showed it) stay on the report."""

    def __init__(self, blocked: Blocked):
        super().__init__(blocked.line())
        self.blocked = blocked

    def record(self) -> BlockedRecord:
        return BlockedRecord(self.blocked.layer.name, self.blocked.test_id, self.blocked.line())


class Walk:
    def __init__(self, inventory: Inventory, prober: Prober, hop: Hop,
                 placement: Placement, variant: str | None, protocol: str | None,
                 record: Callable[[Record], None], dns_cache: dict,
                 diagnoser: Diagnoser | None = None, attempts: int = 1,
                 watch: WatchResult | None = None,
                 family: str | None = None, family_in_id: bool = False):
        self.inventory, self.prober, self.hop = inventory, prober, hop
        self.watch = watch  # --during: the cells' outages, judged instead of a probe now
        self.family = family  # the IP family every address is in (families.py)
        self.family_in_id = family_in_id  # a dual-stack run: ids and "next" name it
        self.attempts = attempts  # per probe cell (--attempts); see attempts.py
        self.placement, self.variant, self.protocol = placement, variant, protocol
        self._record = record
        self._dns_cache = dns_cache  # per-process: resolv.conf of each client
        self.diagnoser = diagnoser  # narrows a failure down (None: the failure as observed)
        self._last: Attempt | None = None  # the latest probe, to narrow down and retry

    @contextmanager
    def _attempting(self, attempt: Attempt) -> Iterator[None]:
        """Probe `attempt` in the block: it is what a failure is narrowed from, and its
        narrowing starts beside it should it run past NARROW_EARLY_AFTER."""
        self._last = attempt
        narrowed = self._as_narrowed(attempt)
        timer = None
        if self.diagnoser is not None and narrowed is not None and TIMEOUT not in self.hop.accepted:
            timer = threading.Timer(NARROW_EARLY_AFTER, self.diagnoser.begin, (narrowed,))
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()

    def _as_narrowed(self, attempt: Attempt) -> Attempt | None:
        """The attempt as a failure of it is narrowed down (None: it is not)."""
        return attempt

    # -- the ends of the placement -------------------------------------------
    def _on(self, role: str, node: Node | None) -> Pod:
        assert node is not None, f"placement {self.placement.id} has no {role} node"
        return self.inventory.pod_on(role, node.name)

    @property
    def client(self) -> Pod:
        return self._on("client", self.placement.client)

    @property
    def server(self) -> Pod:
        return self._on("server", self.placement.server)

    @property
    def server_service(self) -> Service:
        """The Service in front of exactly the placement's server."""
        return self.inventory.server_service(self.placement.server)

    @property
    def node_port_service(self) -> Service:
        """The NodePort Service in front of exactly the placement's server."""
        return self.inventory.node_port_service(self.placement.server)

    def host(self, role: str) -> Pod:
        """The hostNetwork pod (the node itself) where `role` runs."""
        return self._on("host", getattr(self.placement, role))

    def service(self, name: str) -> Service:
        return self.inventory.service(name)

    def _source(self, src: Pod) -> Source:
        """`src` as a probe's source, labelled by its address in the test's family (its
        primary without one). The vantage point, no pod, never gets here: OutsideWalk
        labels it by its own address."""
        return src.source(self.family)

    def backend_ips(self, service: Service) -> list[str]:
        return sorted(self.inventory.pod(name).ip_of(self.family) for name in service.backends)

    def address(self, end: Pod | Service) -> str:
        """A pod's IP or a Service's ClusterIP in the test's family (what a source-IP
        check or a lookup expects)."""
        return end.ip_of(self.family)

    @property
    def record_type(self) -> str:
        """The DNS record a lookup asks for: AAAA for IPv6, else A."""
        return RECORD_TYPES[self.family or IPV4]

    # -- destinations --------------------------------------------------------
    def pod_ip(self, pod: Pod, protocol: str) -> Target:
        return pod.target(protocol, self.family)

    def cluster_ip(self, service: Service, protocol: str) -> Target:
        return service.target(protocol, self.family)

    def node_port(self, service: Service, node: Node, protocol: str) -> Target:
        return service.node_port_target(node, protocol, self.family)

    def name_of(self, service: Service, form: str) -> str:
        """The Service's DNS name in one of its forms: short, namespace, fqdn."""
        if form == "short":
            return service.name
        if form == "namespace":
            return f"{service.name}.{service.namespace}"
        return f"{service.name}.{service.namespace}.svc.{self.cluster_domain()}."

    # -- probes --------------------------------------------------------------
    def ask(self, src: Pod, to: Target, question: str, *,
            answer: str | tuple[str, ...] | None = None,
            source_ip: str | tuple[str, ...] | None = None,
            by_name: str | None = None, attempts: int | None = None) -> Observation:
        """One request ("hostname", "clientip"), made as the cell's attempts; judge who
        answered / what it saw.

        `answer`: the backend (or any of the backends) that must answer.
        `source_ip`: the source (or any of the sources) the server must see.
        `attempts`: this many instead of the run's (1: a request whose effect the next
        ones rely on, such as the one that pins session affinity).
        With --during, the cell is judged on what its loop saw while CMD ran (_watched).
        """
        if self.watch is not None:
            return self._watched(src, to, question, by_name)
        seen = self._judged(src, to, question, answer=answer, source_ip=source_ip,
                            by_name=by_name, attempts=attempts)
        self.record(seen)
        return seen

    def _judged(self, src: Pod, to: Target, question: str, *,
                answer: str | tuple[str, ...] | None = None,
                source_ip: str | tuple[str, ...] | None = None,
                by_name: str | None = None, attempts: int | None = None) -> Observation:
        """`ask`'s cell, judged and not yet recorded (a pin records its tries as one)."""
        source, record = self._source(src), self.record_type

        def probe() -> Observation:
            return self.prober.request(source, to, question, host=by_name, record=record)

        with self._attempting(Attempt(src, to, by_name, retry=probe, family=self.family)):
            tries = self.prober.ask(source, to, question, attempts or self.attempts,
                                    host=by_name, record=record)
        allowed = (answer,) if isinstance(answer, str) else answer
        sources = (source_ip,) if isinstance(source_ip, str) else source_ip
        for seen in tries:  # each attempt judged on its own answer
            if seen.cls == OK and allowed is not None and seen.response not in allowed:
                seen.cls = WRONG_BACKEND
                seen.detail = f"answered by {seen.response!r}, expected {' or '.join(allowed)}"
            if seen.cls == OK and sources is not None and host_of(seen.response) not in sources:
                seen.cls = WRONG_SOURCE
                seen.detail = (f"server saw {host_of(seen.response)}, "
                               f"expected {' or '.join(sources)}")
        return self.cell_of(tries)

    def _watched(self, src: Pod, to: Target, question: str, by_name: str | None) -> Observation:
        """--during: the cell's outages while CMD ran (watch.py), judged against
        --max-outage; no probe now, the change is over. The watch planned its cells
        (watchcells.py) apart from the tests: a test asking another target than its cell
        was probed at is an error, not a verdict."""
        test = self.hop.test_id(self._cell().placement, self.variant, self.protocol)
        planned = self.watch.planned.get(test)
        watched = family_of(planned.target.ip) if planned else None
        if self.family and watched and watched != self.family:  # a dual-stack run's twin
            raise NoAddress(f"not watched: a watch probes each cell in its pods' primary family "
                            f"({NAMES[watched]}), not {NAMES[self.family]}")
        if planned is None or (planned.client.pod, planned.target.ip, planned.target.port,
                               planned.target.protocol, REQUEST, planned.by_name) != (
                                   src.name, to.ip, to.port, to.protocol, question, by_name or ""):
            probed = (f"{planned.client.pod} -> {planned.target.label()}" if planned
                      else "no such cell")
            raise ProbeError(f"{test} asks {src.name} -> {to.label()} for {question!r}; "
                             f"the watch probed {probed}")
        cell = self.watch.cells.get(test) or watch_of([], 0.0)
        failures = tuple(self.watch.failures(test))
        self._record(WatchRecord(cell, self.watch.max_outage, failures))
        longest = cell.longest
        cls = (longest.classes[0] if longest else cell.end_class or PROBE_ERROR) \
            if failures else OK
        seen = Observation(probe=f"{src.source().label()} -> {to.label()}", cls=cls,
                           seconds=0.0, command=f"every {INTERVAL:g} s while CMD ran",
                           output="", src_pod=src.name, src_node=src.node, src_ip=src.ip,
                           dst=to.label(), via=to.via, detail=cell.summary())
        record = replace(self._cell().observed(seen, not failures, self.hop.accepted),
                         seconds=None)  # no one probe's time: the watch's own record has them
        self._record(record)
        if failures:
            raise HopFailure("\n".join([
                self._title(),
                f"  probe:    {seen.probe} on {src.node} ({to.via}), {seen.command}",
                f"  watched:  {cell.summary()}",
                *(f"  outage:   {w.words()}" for w in cell.windows[:WINDOW_LINES]),
                *([(f"  outage:   ... {len(cell.windows) - WINDOW_LINES} more in the results "
                   "JSON")] if len(cell.windows) > WINDOW_LINES else []),
                *(f"  failed:   {line}" for line in failures),
                f"  verdict:  {verdict.for_failure(replace(record, via=to.via))}"]))
        return seen

    def cell_of(self, tries: list[Observation]) -> Observation:
        """The one Observation a cell of several attempts shows: its first failed attempt
        (the evidence), else its first, carrying every counted attempt's class and time."""
        return shown(tries, self.hop.accepted)

    def repeated(self, probe: Callable[[], Observation]) -> list[Observation]:
        """`probe` made as many times as the cell's attempts, at once (each from a kept
        shell of its own): for the probes without a concurrent form of their own (dig,
        the MTU echo)."""
        return concurrently(probe, self.attempts)

    def pin(self, src: Pod, to: Target, question: str,
            answer: tuple[str, ...]) -> tuple[Observation, str | None]:
        """A sticky session's first request: one attempt at a time (attempts made at
        once could race to two backends before the pin exists), until one answers or
        --attempts are spent. The tries show as one cell, flaky when some were lost
        before one answered (one lost datagram made it "broken: 1 of 1" before).
        Returns that cell and the answer that pinned the session (None: none did)."""
        if self.watch is not None:
            seen = self._watched(src, to, question, None)
            return seen, seen.response if seen.cls == OK else None
        tries: list[Observation] = []
        for _ in range(max(1, self.attempts)):
            tries.append(self._judged(src, to, question, answer=answer, attempts=1))
            if tries[-1].cls == OK:
                break
        pinned = tries[-1].response if tries[-1].cls == OK else None
        seen = shown(tries, self.hop.accepted)
        self.record(seen)  # one cell: the report counts the lost tries as its attempts
        return seen, pinned

    def ask_every_backend(self, src: Pod, to: Target, service: Service) -> Observation:
        """Ask through a Service until every backend answered, in rounds.

        A round is 8 x backends requests at once (in one exec, waves of 8), and every
        request is an attempt. Up to --attempts rounds run: they stop once every backend
        has answered, once a round has no answer at all (more rounds would only wait out
        more timeouts), or once a backend's silence can no longer be chance
        (`silence_is_chance`). A backend that never answered is PARTIAL_BACKENDS, a
        failure of the cell as a whole (broken, never flaky); else the cell is broken
        when no request answered and flaky (k/M) when k of the M requests failed or
        answered from no backend of the Service.

        Why silence is weighed: on a lossy path a live backend can miss a whole round by
        chance (half the datagrams lost each way: 1 in 10 per backend for a round of 24
        over 3 backends), which read "broken" where the network is flaky. One round
        (--attempts 1) still judges what it saw."""
        expected = set(service.backends)
        per_round = 8 * len(expected)

        source = self._source(src)

        def once() -> Observation:
            return self.prober.dial(source, to, "hostname")

        tries: list[Observation] = []
        with self._attempting(Attempt(src, to, retry=once, family=self.family)):
            for _ in range(max(1, self.attempts)):
                this_round = self.prober.attempts(source, to, "hostname", per_round)
                for seen in this_round:
                    if seen.cls == OK and seen.response not in expected:
                        seen.cls, seen.detail = judge_backends([seen.response], expected)
                tries += this_round
                answered = {t.response for t in tries if t.cls == OK}
                if answered >= expected or not any(t.cls == OK for t in this_round):
                    break
                if any(t.cls != OK for t in this_round) and not silence_is_chance(
                        sum(t.cls == OK for t in tries), len(tries), len(expected)):
                    break
        seen = self.cell_of(tries)
        answered = {t.response for t in tries if t.cls == OK}
        if not answered >= expected:
            # A backend that never answered is a broken path to it, whatever else failed.
            failed = f"; {seen.detail}" if seen.cls != OK and seen.detail else ""
            seen.cls, detail = judge_backends(sorted(answered), expected)
            seen.detail = detail + failed
        elif seen.cls == OK:
            seen.detail = judge_backends(sorted(answered), expected)[1]
        seen.answers = sorted({t.response for t in tries if t.response})
        self.record(seen)
        return seen

    def resolve(self, src: Pod, name: str, transport: str, records: list[str],
                server: DnsServer | None = None) -> Observation:
        """Resolve through the pod's resolver, or ask one DNS server pod directly (at its
        address in the test's family); the test's family decides the record (A, AAAA)."""
        to = (server.target(transport, self.family) if server
              else Target(name, 53, transport, "cluster DNS"))
        source, record = self._source(src), self.record_type

        def probe() -> Observation:
            return self.prober.resolve(source, name, transport,
                                       server=to if server else None, record=record)

        with self._attempting(Attempt(src, to, name, retry=probe, family=self.family)):
            tries = self.repeated(probe)
        for seen in tries:
            if seen.cls == OK and sorted(seen.answers) != sorted(records):
                seen.cls = DNS
                seen.detail = f"resolved to {seen.answers}, expected {sorted(records)}"
        seen = self.cell_of(tries)
        self.record(seen)
        return seen

    def dns_servers(self) -> tuple[list[DnsServer], str]:
        """The DNS server pods on this placement: on the client's node (same-node),
        on every other node (cross-node); with why there are none, if none."""
        inv, node = self.inventory, self.placement.client.name
        if inv.dns_servers_unknown:
            return [], f"the DNS server pods are unknown: {inv.dns_servers_unknown}"
        same = self.placement.id == "same-node"
        found = inv.dns_servers_from(node, same)
        where = f"on {node}" if same else f"off {node}"
        return found, "" if found else f"no ready DNS server pod {where} (of {len(inv.dns_servers)})"

    def resolve_on_each(self, src: Pod, name: str, transport: str, records: list[str],
                        servers: list[DnsServer]) -> Observation:
        """Ask each DNS server directly. The first wrong answer is what the test
        fails on (and what the diagnosis narrows down); its detail lists them all."""
        answers = []
        for server in servers:
            seen = self.resolve(src, name, transport, records, server=server)
            answers.append((server, seen, self._last))
        failed = [(seen, attempt) for _, seen, attempt in answers if seen.cls not in self.hop.accepted]
        if not failed:
            return answers[-1][1]
        seen, self._last = failed[0]
        seen.detail = "; ".join(f"{d.name} ({d.target(transport, self.family).ip}) on {d.node}: "
                                f"{o.cls}" for d, o, _ in answers)
        return seen

    def echo_near_mtu(self, src: Pod, to: Target) -> Observation:
        """Send a payload that fills packets to the pod MTU and compare the echo.

        TCP: POST 3 x MTU to /echo, so both directions carry full-size segments
        (Linux sets DF on TCP). UDP: one datagram of exactly MTU - 28 bytes
        (IP + UDP headers; 48 in IPv6, whose header is 40); Linux sets DF on UDP too (PMTU
        discovery "want"), so a path with a smaller MTU drops it instead of fragmenting.
        IPv6 routers never fragment: a smaller link on the path drops the packet and
        answers ICMPv6 Packet Too Big, which is what the echo then shows. An IPv6 pod
        interface below 1280 bytes, IPv6's minimum, fails as a fact before any probe.
        """
        source = self._source(src)
        mtu = self.prober.mtu(source, to.ip)
        if self.family == IPV6 and mtu < IPV6_MIN_MTU:
            self.expect_fact(f"MTU of the interface toward {to.ip}", mtu,
                             f"at least {IPV6_MIN_MTU} (IPv6's minimum link MTU)", src,
                             conclusion=f"the pod interface's MTU {mtu} is below IPv6's minimum "
                                        f"{IPV6_MIN_MTU}: IPv6 cannot work on it; look at the "
                                        "CNI's MTU (node MTU minus the overlay's overhead)")
        if to.protocol == "tcp":
            payload = payload_of(3 * mtu)

            def probe() -> Observation:
                return self.prober.http(source, to, "echo", data=f"msg={payload}")
        else:
            headers = IP_UDP_HEADERS[self.family or IPV4]
            size = min(mtu - headers, UDP_ECHO_MAX) - len(UDP_ECHO_PREFIX)
            payload = payload_of(size)

            def probe() -> Observation:
                return self.prober.dial(source, to, UDP_ECHO_PREFIX + payload)
        with self._attempting(Attempt(src, to, None, large=True, retry=probe, family=self.family)):
            tries = self.repeated(probe)
        for seen in tries:
            if seen.cls == OK and seen.response != payload:
                seen.cls = CORRUPTED
                seen.detail = (f"echo of {len(payload)} bytes came back as "
                               f"{len(seen.response)} bytes")
        seen = self.cell_of(tries)
        seen.detail = f"pod MTU {mtu}, payload {len(payload)} bytes" + (
            f"; {seen.detail}" if seen.detail else "")
        seen.output = seen.output.replace(payload, f"<{len(payload)}-byte payload>")
        seen.command = seen.command.replace(payload, f"<{len(payload)}-byte payload>")
        seen.response = f"<{len(seen.response)} bytes>"
        self.record(seen)
        return seen

    def resolv_conf(self, src: Pod) -> tuple[list[str], list[str]]:
        """(nameservers, search) of the pod's /etc/resolv.conf, read once per process."""
        if src.name not in self._dns_cache:
            text = self.prober.read(src.source(), ["cat", "/etc/resolv.conf"], "resolv.conf")
            self._dns_cache[src.name] = parse_resolv_conf(text)
        return self._dns_cache[src.name]

    def cluster_domain(self) -> str:
        """cluster.local or whatever the pod's search path says (<ns>.svc.<domain>)."""
        _, search = self.resolv_conf(self.client)
        prefix = f"{self.inventory.namespace}.svc."
        for domain in search:
            if domain.startswith(prefix):
                return domain[len(prefix):]
        return "cluster.local"

    # -- expectations --------------------------------------------------------
    def _cell(self) -> ProbeRecord:
        """Where this test stands in the matrix: hop, placement, variant, protocol, nodes."""
        placement = self.placement.id if self.hop.placements else None
        return ProbeRecord(
            hop=self.hop.name, placement=placement, variant=self.variant,
            # The family only where the id shows it (a dual-stack run): a single-stack
            # run's verdicts and failure words stay as they were before families.
            protocol=self.protocol, family=self._suffix,
            client_node=self.placement.client.name if self.placement.client else "",
            server_node=self.placement.server.name if self.placement.server else "")

    def record(self, seen: Observation) -> None:
        expected = self.hop.accepted
        self._record(self._cell().observed(seen, seen.cls in expected, expected))

    def expect(self, seen: Observation) -> None:
        """Fail, with the whole story, unless `seen` is what the hop expects."""
        if seen.cls not in self.hop.accepted:
            diagnosis = None
            narrowed = self._as_narrowed(self._last) if self._last is not None else None
            if self.diagnoser is not None and narrowed is not None:
                diagnosis = self.diagnoser.diagnose(narrowed, seen)
            blocked = decide(self.hop, diagnosis.findings if diagnosis is not None else None)
            if blocked is not None:
                raise HopBlocked(replace(blocked, family=self._suffix))
            raise HopFailure(self.failure(seen, diagnosis))

    def expect_fact(self, what: str, observed: object, expected: object, src: Pod,
                    conclusion: str = "") -> None:
        """For configuration facts (resolv.conf) rather than packets. `conclusion`:
        what a wrong fact means, left as the test's diagnosis (no probe to narrow)."""
        if observed == expected:
            return
        record = replace(self._cell(), cls="WRONG_CONFIG", ok=False, probe=f"{src.name}: {what}")
        self._record(record)
        if conclusion and self.diagnoser is not None:
            self.diagnoser.note(DiagnosisRecord(conclusion, (f"{what}: {observed}, expected {expected}",)))
        raise HopFailure(
            f"{self._title()}\n  fact:     {what} of {src.name} on {src.node} is {observed}\n"
            f"  expected: {expected}\n  verdict:  {verdict.for_failure(record)}\n"
            f"  next:     {next_step(self.hop.name, None, None, self._next_suffix) or 'bottom of the walk'}")

    @property
    def _suffix(self) -> str | None:
        """The id's family part: the family on a dual-stack run, else none."""
        return self.family if self.family_in_id else None

    @property
    def _next_suffix(self) -> str | None:
        """The family part of the next step's id. A test without a family walked each
        end's primary address: on a dual-stack run the hop below, if it has twins, is
        named in the primary family (its id without a family is not collected there)."""
        if self.family is None and self.family_in_id:
            return self.inventory.primary_family
        return self._suffix

    def _title(self) -> str:
        params = "-".join(p for p in (self._cell().placement, self.variant, self.protocol,
                                      self._suffix) if p)
        return f"{self.hop.name}{f' [{params}]' if params else ''}: {self.hop.layer.name}"

    def failure(self, seen: Observation, diagnosis: Diagnosis | None = None) -> str:
        cell = self._cell()
        step = next_step(self.hop.name, cell.placement, self.protocol, self._next_suffix)
        sentence = verdict.for_failure(replace(cell, cls=seen.cls, via=seen.via))
        if diagnosis is not None:
            sentence += f". Narrowed down: {diagnosis.verdict}"
        return "\n".join([
            self._title(),
            f"  probe:    {seen.probe} on {seen.src_node}" + (f" ({seen.via})" if seen.via else ""),
            f"  expected: {self.hop.expect}",
            f"  observed: {seen.cls} after {seen.seconds:.2f}s"
            + (f": {seen.detail}" if seen.detail else ""),
            *attempt_lines(self._cell().observed(seen, False, self.hop.accepted)),
            *evidence(seen, self._namespace_of(seen)),
            f"  verdict:  {sentence}",
            *(diagnosis.lines() if diagnosis is not None else []),
            f"  next:     {step or 'this is the bottom of the walk'}",
        ])

    def _namespace_of(self, seen: Observation) -> str:
        pod = self.inventory.pods.get(seen.src_pod)
        return pod.namespace if pod else self.inventory.namespace


def shown(tries: list[Observation], accepted: frozenset[str]) -> Observation:
    """A cell's attempts as the one Observation it shows (Walk.cell_of)."""
    if len(tries) == 1:
        return tries[0]
    result = attempts.judge(tries, accepted)
    seen = tries[result.first_failed or 0]
    seen.attempt_classes = list(result.classes)
    seen.attempt_seconds = [t.seconds for t in tries[:result.attempts]]
    return seen


def concurrently(probe: Callable[[], Observation], times: int) -> list[Observation]:
    """`probe` run `times` times at once, in the order they were started."""
    if times <= 1:
        return [probe()]
    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(lambda _: probe(), range(times)))


def attempt_lines(record: ProbeRecord) -> list[str]:
    """'  attempts: flaky: 1 of 3 attempts failed (TIMEOUT); p50 0.004s p99 3.002s', or
    nothing for a cell of one attempt."""
    if not record.attempt_classes:
        return []
    cell = record.cell()
    timing = (f"; p50 {cell.p50:.3f}s p99 {cell.p99:.3f}s"
              if cell.p50 is not None and cell.p99 is not None else "")
    return [f"  attempts: {record.attempt_words()}{timing}"]


def evidence(seen: Observation, namespace: str, limit: int = 600) -> list[str]:
    """A copy-paste repro of the probe, and what it printed."""
    lines = [f"  repro:    kubectl -n {namespace} exec {seen.src_pod} -- {seen.command}"]
    if seen.output:
        lines.append("  output:   " + seen.output.replace("\n", "\n            ")[:limit])
    return lines
