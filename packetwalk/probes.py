"""Probes: one source -> destination action, and the Observation it yields.

A probe runs a command inside a pod (through an injected exec function, see
podexec.py) and classifies what came back. Classification is pure and lives
here so it can be unit-tested without a cluster.

Tools, all inside the agnhost image:
- TCP: `curl -v` straight at the destination. Its exit code tells timeout (28)
  from DNS (6); `-v` adds the errno text curl 7.x leaves out of its message
  ("connect to ... failed: Connection refused").
- UDP: bash's /dev/udp in the source pod: a connected socket (so an ICMP
  refusal reaches it), one datagram out, and one `dd` read for the answer (a
  read of a UDP socket returns one whole datagram). No answer within UDP_WAIT
  seconds is a TIMEOUT. Several tries use a socket each, so a Service spreads
  them, and run at once (ask_script), so a cell's attempts that all time out cost
  one wait. (The pods run no dialer of their own: agnhost netexec's /dial would
  dial for anyone who reaches the pod.)
- DNS: `dig` with +search so short names use the pod's search path, asking for
  the record of the test's family (A, or AAAA for IPv6).

IPv6 literals: curl's URL takes them in brackets (`http://[fd10::5]:8080/`), with
--globoff so a curl older than its IPv6 check in the URL globber does not read the
brackets as a glob range;
bash's /dev/udp/HOST/PORT takes them bare (`/dev/udp/fd10::5/8081`: bash splits
at the last slash and hands HOST to getaddrinfo, which reads the literal; checked
in tests/unit/test_probes.py against ::1 where the machine has IPv6 loopback).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

OK = "OK"
TIMEOUT = "TIMEOUT"
REFUSED = "REFUSED"
UNREACHABLE = "UNREACHABLE"
RESET = "RESET"
DNS = "DNS"
WRONG_BACKEND = "WRONG_BACKEND"
PARTIAL_BACKENDS = "PARTIAL_BACKENDS"
WRONG_SOURCE = "WRONG_SOURCE"
CORRUPTED = "CORRUPTED"
OTHER = "OTHER"
# Not a network result: the probe itself could not run. Raised, never asserted on.
PROBE_ERROR = "PROBE_ERROR"

# What "blocked by policy" may look like: kube-router rejects (REFUSED), most
# other controllers drop (TIMEOUT), some reject with admin-prohibited (UNREACHABLE).
BLOCKED_CLASSES = frozenset({TIMEOUT, REFUSED, UNREACHABLE})

CONNECT_TIMEOUT = 3  # seconds curl waits for a TCP handshake
REQUEST_TIMEOUT = 5  # seconds curl waits for a whole HTTP exchange
UDP_WAIT = 3  # seconds a UDP ask waits for its answer
DIG_TIMEOUT = 2  # seconds dig waits for one DNS answer (one try)


class ProbeError(Exception):
    """The probe could not run (exec failed, tool missing).

    Raised so pytest reports an ERROR, never a network failure."""


@dataclass(frozen=True)
class ExecResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Source:
    """The pod a probe runs in."""

    pod: str
    namespace: str
    node: str
    ip: str
    container: str = ""  # "" lets the API pick a pod's only container

    def label(self) -> str:
        # The vantage point may be labelled before (or without) knowing its address.
        return f"{self.pod} ({self.ip})" if self.ip else self.pod


@dataclass(frozen=True)
class Target:
    """Where a probe goes. `via` says what the address is (pod, Service, node)."""

    ip: str
    port: int
    protocol: str
    via: str = ""

    def label(self) -> str:
        return f"{self.ip}:{self.port}/{self.protocol}"


@dataclass
class Observation:
    """What one probe saw: a class, how long it took, and the evidence."""

    probe: str  # "client-pw-worker (10.244.1.5) -> 10.96.12.7:8080/tcp"
    cls: str
    seconds: float
    command: str
    output: str
    src_pod: str = ""
    src_node: str = ""
    src_ip: str = ""
    dst: str = ""
    via: str = ""
    response: str = ""  # the useful part of the answer (hostname, client ip, ...)
    detail: str = ""  # why the class was chosen, in words
    answers: list[str] = field(default_factory=list)  # every answer (backends, DNS records)
    # A cell of several attempts (attempts.py): each counted attempt's class and seconds,
    # in order; this Observation is the one shown (the first failed, else the first).
    # Empty: the probe was one attempt.
    attempt_classes: list[str] = field(default_factory=list)
    attempt_seconds: list[float | None] = field(default_factory=list)

    def record(self) -> dict:
        """A JSON-safe dict for reports (user_properties travel through xdist)."""
        return asdict(self)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def classify_socket_error(text: str) -> str:
    """Map an error text (curl -v, bash's /dev/udp, Go net errors, dig) to a class."""
    low = text.lower()
    # First: Go wraps a failed name lookup around its cause ("lookup x on
    # 10.96.0.10:53: read udp ...: i/o timeout"); the broken layer is DNS.
    if any(words in low for words in ("no such host", "could not resolve", "lookup ",
                                      "name or service not known",
                                      "temporary failure in name resolution")):
        return DNS
    if "refused" in low:
        return REFUSED
    if "timed out" in low or "timeout" in low or "deadline exceeded" in low:
        return TIMEOUT
    if "no route to host" in low or "unreachable" in low:
        return UNREACHABLE
    if "reset by peer" in low or "connection reset" in low:
        return RESET
    return OTHER


# curl exit codes (man curl): 6 resolve, 7 connect, 28 timeout, 52 empty reply,
# 55/56 send/recv failure (reset). 126/127: curl missing, i.e. a broken probe.
_CURL_CLASSES = {0: OK, 6: DNS, 28: TIMEOUT, 52: OTHER, 55: RESET, 56: RESET}


def classify_curl(rc: int, stderr: str) -> str:
    if rc in (126, 127):
        return PROBE_ERROR
    if rc == 7:
        # "connect to 10.0.0.1 port 80 failed: Connection refused" (needs -v)
        return classify_socket_error(" ".join(_connect_lines(stderr))) if stderr else OTHER
    if rc == 28 and "resolving timed out" in stderr.lower():
        return DNS  # the name never resolved within --max-time: the lookup timed out
    return _CURL_CLASSES.get(rc, OTHER)


def _connect_lines(stderr: str) -> list[str]:
    """The lines of `curl -v` output that matter as evidence."""
    keep = ("* connect to", "* Failed", "curl:", "* Connected", "< HTTP", "* Could not")
    return [line for line in stderr.splitlines() if line.startswith(keep)]


UDP_READ = 65535  # one read of this many bytes takes any one datagram whole
# `timeout` ends `dd` with 124 (coreutils) or by its signal (busybox: 143, 137).
_TIMED_OUT = frozenset({124, 137, 143})


# Concurrent tries start in waves of at most this many: a Service cell's dozens of
# tries must not fork dozens of curls at once in a pod limited to 128 MiB.
WAVE = 8
ANSWER_LIMIT = 2048  # characters of one try's line; a line under PIPE_BUF is one write
# curl -v for its errno ("connect to ... failed: Connection refused"); of its output
# the line keeps the body when curl succeeded, else curl's connect lines.
_CURL_PICK = ("out=$(for l in $out; do case $l in "
              "'* connect to'*|'* Failed'*|'* Could not'*|curl:*) ((rc)) && echo \"$l\";; "
              "[*\\<\\>{}]*) ;; *) ((rc)) || echo \"$l\";; esac; done)")


def _timed(once: str, pick: str = "", lead: str = "") -> str:
    """One try as a line: its exit code, its microseconds (bash's EPOCHREALTIME; 0
    where bash is older than 5.0), then the answer or the error, joined into one line.
    `pick`: bash that keeps only the useful lines of $out, run after the clock stops.
    `lead`: bash words printed first on the line, in the same write (a watch's send time)."""
    return ("t=${EPOCHREALTIME:-0}; out=$(" + once + "); rc=$?; e=${EPOCHREALTIME:-0}; "
            + (f"IFS=$'\\n'; {pick}; unset IFS; " if pick else "")
            + f'echo {lead}"$rc" "$(( ${{e/[.,]/}} - ${{t/[.,]/}} ))" ${{out:0:{ANSWER_LIMIT}}}')


def ask_script(protocol: str, host: str, port: int, request: str, tries: int,
               wait: float, connect_timeout: float = CONNECT_TIMEOUT) -> str:
    """The bash that asks `tries` times, a socket each; one line per try: its exit
    code, its microseconds, then the answer or the error. More than one try run at
    once, as background jobs (in waves of WAVE), each printing its own line when it
    ends, so a cell whose every try times out costs one wait per wave, not one per
    try; the lines come in the order the tries end. The values are quoted into it,
    so the evidence shows a command anyone can paste into `kubectl exec -- bash -c`.
    `set -f`: the unquoted $out only joins lines, never globs."""
    step = try_step(protocol, host, port, request, wait, connect_timeout)
    if tries == 1:
        return f"set -f; {step}"
    return (f"set -f; for ((i = 0; i < {tries}; i++)); do {{ {step}; }} & "
            f"(( i % {WAVE} < {WAVE - 1} )) || wait; done; wait")


def try_step(protocol: str, host: str, port: int, request: str, wait: float,
             connect_timeout: float = CONNECT_TIMEOUT, lead: str = "") -> str:
    """The bash of one try (a socket of its own) that prints its line: exit code,
    microseconds, answer or error (parse_tries reads it), after `lead` (see _timed).
    Needs `set -f` before it."""
    if protocol == "udp":
        once = (f"{{ exec 3<>/dev/udp/{_quote(host)}/{port} && printf %s {_quote(request)} >&3 && "
                f"timeout {wait:g} dd bs={UDP_READ} count=1 status=none <&3; }} 2>&1")
        return _timed(once, lead=lead)
    url_host = f"[{host}]" if ":" in host else host
    connect = min(connect_timeout, wait)
    globoff = "--globoff " if ":" in host else ""  # [ ] of an IPv6 literal are not a glob
    once = (f"curl -sS -v {globoff}--connect-timeout {connect:g} --max-time {wait:g} "
            f"{_quote(f'http://{url_host}:{port}/{request}')} 2>&1")
    return _timed(once, _CURL_PICK, lead)


def _quote(value: str) -> str:
    """As bare as bash allows: the evidence reads better inside the single quotes
    `bash -c` gets. Double quotes for spaces and URL characters, shlex otherwise."""
    if re.fullmatch(r"[\w.:/-]+", value):
        return value
    return f'"{value}"' if re.fullmatch(r"[\w .:/?&=\[\]-]*", value) else shlex.quote(value)


@dataclass(frozen=True)
class Try:
    """One try of an ask_script: its class, its answer or why it failed, its seconds
    (None: the pod's bash could not time it)."""

    cls: str
    answer: str
    error: str
    seconds: float | None


def parse_tries(output: str, protocol: str, wait: float = UDP_WAIT) -> list[Try]:
    """ask_script output -> one Try per try line; other lines (none expected) ignored."""
    tries = []
    for line in output.splitlines():
        code, _, rest = line.partition(" ")
        micros, _, text = rest.partition(" ")
        if not (code.isdigit() and micros.isdigit()):
            continue
        code_n, text = int(code), text.strip()
        seconds = round(int(micros) / 1e6, 6) if int(micros) else None
        if code_n == 0 and text:
            tries.append(Try(OK, text, "", seconds))
        elif protocol == "udp":
            if code_n in (126, 127):
                tries.append(Try(PROBE_ERROR, "", f"the ask could not run: {text or code}", seconds))
                continue
            cls = TIMEOUT if code_n in _TIMED_OUT and not text else classify_socket_error(text)
            if code_n == 0:
                cls, text = OTHER, "an empty answer"
            tries.append(Try(cls, "", text or f"no answer within {wait:g} s", seconds))
        elif code_n == 0:
            tries.append(Try(OTHER, "", "an empty answer", seconds))
        else:
            tries.append(Try(classify_curl(code_n, text), "", text or f"curl exit {code_n}",
                             seconds))
    return tries


def classify_asks(rc: int, output: str, protocol: str,
                  wait: float = UDP_WAIT) -> tuple[str, list[str], str]:
    """ask_script output -> (class, answers, detail). Every try must answer; the
    first failed try's error names the class."""
    if rc in (126, 127):
        return PROBE_ERROR, [], f"bash could not run the ask (exit {rc}): {_first_line(output)}"
    tries = parse_tries(output, protocol, wait)
    answers = [t.answer for t in tries if t.cls == OK]
    errors = [t for t in tries if t.cls != OK]
    if errors:
        detail = f"{len(errors)} of {len(tries)} tries failed, first: {errors[0].error}"
        if answers:
            detail += f"; answered by {sorted(set(answers))}"
        return errors[0].cls, answers, detail
    if not answers:
        return PROBE_ERROR, [], f"the ask printed nothing (exit {rc}): {_first_line(output)}"
    return OK, answers, ""


_DIG_STATUS = re.compile(r"status: ([A-Z]+)")
_DIG_RECORD = {kind: re.compile(rf"^\S+\s+\d+\s+IN\s+{kind}\s+(\S+)\s*$", re.MULTILINE)
               for kind in ("A", "AAAA")}


def classify_dig(rc: int, output: str, record: str = "A") -> tuple[str, list[str], str]:
    """dig +noall +comments +answer output -> (class, `record` records, detail). Only
    records of the asked type count: a CNAME or the other family's is no answer."""
    if rc in (126, 127):
        return PROBE_ERROR, [], "dig is missing from the image"
    if rc == 9 or (rc != 0 and "no servers could be reached" in output):
        # "communications error ... timed out" or "... connection refused"
        errors = [line for line in output.splitlines() if "error" in line or "failed" in line]
        cls = classify_socket_error(" ".join(errors))
        return (TIMEOUT if cls in (OTHER, DNS) else cls), [], _first_line(" ".join(errors))
    status = _DIG_STATUS.search(output)
    if rc != 0 or status is None:
        return PROBE_ERROR, [], _first_line(output) or f"dig exit {rc}"
    records = sorted(_DIG_RECORD[record].findall(output))
    if status.group(1) != "NOERROR":
        return DNS, [], f"status {status.group(1)}"
    if not records:
        return DNS, [], f"NOERROR but no {record} record"
    return OK, records, ""


def parse_resolv_conf(text: str) -> tuple[list[str], list[str]]:
    """(nameservers, search domains) from /etc/resolv.conf."""
    nameservers: list[str] = []
    search: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            nameservers.append(words[1])
        elif words and words[0] == "search":
            search = words[1:]
    return nameservers, search


def judge_backends(answers: list[str], expected: set[str]) -> tuple[str, str]:
    """Answers from many tries vs the backends that must all answer."""
    seen = {a.strip() for a in answers}
    unexpected = seen - expected
    if unexpected:
        return WRONG_BACKEND, f"answered by {sorted(unexpected)}, not a backend of this Service"
    missing = expected - seen
    if missing:
        return PARTIAL_BACKENDS, f"{sorted(missing)} never answered in {len(answers)} tries"
    return OK, f"all {len(expected)} backends answered"


def host_of(address: str) -> str:
    """'10.244.1.5:41234' -> '10.244.1.5' (a clientip answer). An IPv6 address comes
    back in its short form, an IPv4 client on a dual-stack listener (socat writes
    '[0000:...:ffff:0af4:0105]') as its IPv4 address; anything else as it was."""
    host = address.strip().rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def payload_of(size: int) -> str:
    """A lowercase, position-revealing payload (answers keep it as sent):
    a truncated or shifted copy does not compare equal."""
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz"
    return (pattern * (size // len(pattern) + 1))[:size]


ExecFn = Callable[[Source, list[str], float], ExecResult]


class Prober:
    """Runs probes through `exec_fn` and turns the results into Observations."""

    def __init__(self, exec_fn: ExecFn):
        self._exec = exec_fn

    def run(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        return self._exec(src, command, timeout)

    def _observe(self, src: Source, dst: Target, command: list[str], result: ExecResult,
                 cls: str, seconds: float | None = None, **kw) -> Observation:
        """`seconds`: the probe's own time, when the exec ran more than it (one try of many)."""
        output = (result.stdout + ("\n" if result.stdout and result.stderr else "")
                  + result.stderr).strip()
        took = result.seconds if seconds is None else seconds
        obs = Observation(
            probe=f"{src.label()} -> {dst.label()}", cls=cls, seconds=round(took, 3),
            command=shlex.join(command), output=output[-2000:], src_pod=src.pod,
            src_node=src.node, src_ip=src.ip, dst=dst.label(), via=dst.via, **kw)
        if cls == PROBE_ERROR:
            raise ProbeError(f"probe {obs.probe} could not run: {kw.get('detail') or output}\n"
                             f"  $ {obs.command}")
        return obs

    def http(self, src: Source, dst: Target, path: str, data: str | None = None,
             connect_timeout: float = CONNECT_TIMEOUT) -> Observation:
        """One HTTP request over TCP straight from `src`. A caller expecting a drop may
        shorten `connect_timeout` (NetworkPolicy cells: a deny is decided fast)."""
        command = ["curl", "-sS", "-v", *(["--globoff"] if ":" in dst.ip else []),
                   "--connect-timeout", f"{connect_timeout:g}", "--max-time", str(REQUEST_TIMEOUT)]
        if data is not None:
            command += ["--data", data]
        host = f"[{dst.ip}]" if ":" in dst.ip else dst.ip  # an IPv6 literal needs brackets
        command.append(f"http://{host}:{dst.port}/{path}")
        result = self.run(src, command, REQUEST_TIMEOUT + 5)
        cls = classify_curl(result.rc, result.stderr)
        detail = " / ".join(_connect_lines(result.stderr)[-2:]) if cls != OK else ""
        trimmed = ExecResult(result.rc, result.stdout, "\n".join(_connect_lines(result.stderr)),
                             result.seconds)
        answer = result.stdout.strip() if cls == OK else ""
        return self._observe(src, dst, command, trimmed, cls, response=answer,
                             answers=[answer] if answer else [], detail=detail)

    def dial(self, src: Source, dst: Target, request: str, host: str | None = None,
             wait: float = UDP_WAIT) -> Observation:
        """One request from inside `src`, over UDP or HTTP. HTTP is `http` (curl -v
        straight, its output kept whole as evidence)."""
        if dst.protocol != "udp":
            return self.http(src, Target(host or dst.ip, dst.port, dst.protocol, dst.via), request)
        script = ask_script(dst.protocol, host or dst.ip, dst.port, request, 1, wait)
        command = ["bash", "-c", script]
        result = self.run(src, command, wait + 6)
        cls, answers, detail = classify_asks(result.rc, result.stdout + result.stderr,
                                             dst.protocol, wait)
        dst = Target(host or dst.ip, dst.port, dst.protocol, dst.via)
        return self._observe(src, dst, command, result, cls, answers=answers,
                             response=answers[0].strip() if answers else "", detail=detail)

    def attempts(self, src: Source, dst: Target, request: str, attempts: int,
                 host: str | None = None, wait: float = UDP_WAIT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> list[Observation]:
        """`attempts` requests at once from inside `src`, in one exec (ask_script's
        concurrent form), over UDP or HTTP: one Observation each, in the order they
        ended, each with its own class, answer and seconds, and the exec's whole output.
        `connect_timeout` as for `http`."""
        wait = wait if dst.protocol == "udp" else REQUEST_TIMEOUT
        script = ask_script(dst.protocol, host or dst.ip, dst.port, request, attempts, wait,
                            connect_timeout=connect_timeout)
        command = ["bash", "-c", script]
        waves = -(-attempts // WAVE)
        result = self.run(src, command, waves * (wait + 1) + 5)
        dst = Target(host or dst.ip, dst.port, dst.protocol, dst.via)
        tries = parse_tries(result.stdout + result.stderr, dst.protocol, wait)
        broken = next((t for t in tries if t.cls == PROBE_ERROR), None)
        if result.rc in (126, 127) or broken or len(tries) != attempts:
            why = (broken.error if broken else
                   f"{len(tries)} of {attempts} tries printed their line (exit {result.rc}): "
                   f"{_first_line(result.stderr or result.stdout)}")
            self._observe(src, dst, command, result, PROBE_ERROR, detail=why)  # raises
        return [self._observe(src, dst, command, result, t.cls, seconds=t.seconds,
                              answers=[t.answer] if t.answer else [], response=t.answer,
                              detail=t.error) for t in tries]

    def request(self, src: Source, dst: Target, request: str,
                host: str | None = None, record: str = "A") -> Observation:
        """Ask a probe pod one thing ("hostname", "clientip") over dst.protocol."""
        return self.ask(src, dst, request, 1, host, record)[0]

    def ask(self, src: Source, dst: Target, request: str, attempts: int,
            host: str | None = None, record: str = "A") -> list[Observation]:
        """Ask a probe pod one thing `attempts` times (at once when more than one).

        By name, the name is resolved first (dig, short timeout): when DNS is
        down, curl and bash would spend their whole deadline in the
        resolver's retries and report TIMEOUT (or not answer at all), hiding
        that the broken layer is DNS. A name that does not resolve is the one
        observation: the attempts would ask the same resolver. `record`: the
        lookup's record type, A or AAAA (the family the ask walks)."""
        if host is not None:
            looked_up = self.resolve(src, host, "udp", record=record)
            if looked_up.cls != OK or not looked_up.answers:
                looked_up.cls = DNS
                looked_up.detail = f"{host} did not resolve: {looked_up.detail or looked_up.cls}"
                return [looked_up]
            # The attempts dial the address the name resolved to: each of them resolving
            # again would ask the DNS Service once per attempt, at once, and one that
            # reached a dead replica spent the exec's whole deadline in the resolver
            # (measured: flanneld-down, ProbeError after 9 s). The lookup is this ask's
            # DNS step; a replica that fails is the DNS tests' to name.
            dst = Target(looked_up.answers[0], dst.port, dst.protocol,
                         f"{host} as resolved" + (f", {dst.via}" if dst.via else ""))
            host = None
        if attempts > 1:
            return self.attempts(src, dst, request, attempts, host=host)
        return [self.dial(src, dst, request, host=host)]

    def resolve(self, src: Source, name: str, transport: str,
                server: Target | None = None, record: str = "A") -> Observation:
        """Resolve `name` (its `record` records: A, or AAAA for IPv6) over UDP or TCP:
        with the pod's resolv.conf, or asking `server` (one DNS server pod) directly."""
        command = ["dig", "+search", "+tries=1", f"+time={DIG_TIMEOUT}",
                   "+tcp" if transport == "tcp" else "+notcp",
                   "+noall", "+comments", "+answer", name, record]
        if server is not None:
            command.insert(1, f"@{server.ip}")
        result = self.run(src, command, DIG_TIMEOUT + 5)
        text = result.stdout + result.stderr
        cls, records, detail = classify_dig(result.rc, text, record)
        dst = server if server is not None else Target(name, 53, transport, "cluster DNS")
        return self._observe(src, dst, command, result, cls, answers=records,
                             response=" ".join(records), detail=detail)

    def read(self, src: Source, command: list[str], what: str) -> str:
        """Run a local command whose output is a fact, not a network result."""
        result = self.run(src, command, 10)
        if result.rc != 0:
            raise ProbeError(f"reading {what} in {src.pod} failed (exit {result.rc}): "
                             f"{_first_line(result.stderr or result.stdout)}\n"
                             f"  $ {shlex.join(command)}")
        return result.stdout

    def mtu(self, src: Source, toward: str) -> int:
        """MTU of the interface `src` uses to reach `toward`."""
        script = ("dev=$(ip -o route get " + shlex.quote(toward)
                  + " | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); "
                  "cat /sys/class/net/${dev:-eth0}/mtu")
        text = self.read(src, ["sh", "-c", script], "the interface MTU")
        try:
            return int(text.strip())
        except ValueError as exc:
            raise ProbeError(f"unexpected MTU {text!r} in {src.pod}") from exc

