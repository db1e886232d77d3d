"""Bring up each CNI x kube-proxy mode in turn, run the suites on it, break it with
the self-check's faults, and print one table (issue 12: the measured matrix).

    python3 bench/matrix.py                          (as root: every CNI x mode, 5 runs each)
    python3 bench/matrix.py --cni flannel --proxy-mode nftables --runs 1 --no-faults
    python3 bench/matrix.py --markdown > matrix.md   (the table as docs/networks.md holds it)

Per network: `packetwalk lab down`, then `packetwalk lab up --cni C --proxy-mode M` (timed);
the suites N times on the healthy lab (every failed or errored id is a false failure: the
target is 0); the network's facts as `packetwalk lab status` reads them from the cluster
(pod MTU, kube-proxy's mode); then each fault of tests/selfcheck/expected.py that the CNI
supports: inject, run the suites as the self-check does (diagnosed, --policy-timeout 8), heal.
A CNI that translates Services itself (cilium) is one network, proxy mode "none": the
lab starts no kube-proxy beside it. A CNI whose NetworkPolicy changes take longer than
the suite's default (Cni.policy_timeout: cilium's label changes) runs every run, healthy
or faulted, with its own --policy-timeout, said in the table's notes.
A fault is localized when exactly its expected ids fail and exactly its blocked ids are
errors "blocked: ..." (ids expected to go either way aside), and nothing else errors. The
blocked split comes from the narrowing, so the faults run diagnosed: with --no-diagnose
every blocked id fails instead, and the kube-router/nftables row read 6 of 10 localized.
The control plane's faults (controller-manager-down, scheduler-down: EXPECTED_AT_START)
have no ids: each runs `suites/east_west -n auto -q` as tests/lab/test_control_plane.py
does, and is localized when that run stops at session start with exit 4 and the one
stderr line naming what it waited for and the likely component; so is a CNI agent
stopped on one node (cilium-agent-down: EXPECTED_AT_START_ON_CNI), whose line must
name that node's CNI. An intermittent
fault (udp-lossy: EXPECTED_FLAKY) has no exact ids either: it runs as
tests/selfcheck/test_flaky.py does (east-west's UDP ids, 20 attempts) and is localized
when the pod network's UDP cells fail as flaky with a likely count, nothing reads
broken, and the verdict says flaky.

At the end the default lab is brought up again (`lab down; lab up`). Progress goes to
stderr, the table and its notes to stdout. Exit 0 when every network came up with no false
failure and every fault localized, 1 otherwise, 2 on bad input.

The whole matrix with faults takes the lab for hours, more than one sitting. With
`--record FILE` each network's row is appended to FILE (one JSON line, with the day and
the commit it was measured on) as soon as that network is done; `--from FILE` prints the
table from such lines without touching the lab, the latest line of each network kept:

    python3 bench/matrix.py --cni flannel --record bench/matrix.jsonl
    python3 bench/matrix.py --from bench/matrix.jsonl --markdown

`--faults A,B` runs only those faults; recorded, such a row adds them to the network's
latest whole row instead of replacing it (`--runs 0` skips the healthy runs):

    python3 bench/matrix.py --cni bridge --proxy-mode nftables --runs 0 --faults udp-lossy \
        --record bench/matrix.jsonl
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from packetwalk.lab.cni import cni_named, names
from packetwalk.lab.components import PROXY_MODES
from tests.selfcheck.expected import (
    AT_START_ARGS,
    AT_START_TIMEOUT,
    EXPECTED,
    EXPECTED_AT_START,
    EXPECTED_AT_START_ON_CNI,
    EXPECTED_FLAKY,
    SUITES,
    Expectation,
    StopsAtStart,
    expected_on,
    flaky_mismatch,
    mismatches,
    stop_mismatch,
)
from tests.suiterun import SuiteRun, run_pytest, run_suites

# Every fault whose run stops at session start: a node's CNI, then the control plane's
# (last in applicable(): a controller that does not come back stops every later fault).
STOPS_AT_START = {**EXPECTED_AT_START_ON_CNI, **EXPECTED_AT_START}

# The proxy-mode cell of a CNI that translates Services itself: the lab starts no
# kube-proxy beside it whatever --proxy-mode says, so it is one network, not one per mode.
NO_KUBE_PROXY = "none"
SELFCHECK_POLICY_TIMEOUT = 8.0  # what tests/selfcheck passes under a fault

HEADERS = ("CNI", "version", "proxy mode", "pod MTU", "ids passed/skipped/failed",
           "false failures", "faults localized", "suite wall (median)", "lab up")


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line and exit 2, not argparse's usage block."""

    def error(self, message: str) -> None:
        print(f"matrix: {message}", file=sys.stderr)
        sys.exit(2)


def pick(text: str | None, known: list[str] | tuple[str, ...], what: str) -> list[str]:
    """'a,b' -> ['a', 'b'], each one of known; None -> all of known."""
    if text is None:
        return list(known)
    chosen = [word.strip() for word in text.split(",") if word.strip()]
    for word in chosen or [text]:
        if word not in known:
            raise ValueError(f"unknown {what} {word!r}; known: {', '.join(known)}")
    return chosen


@dataclass
class Network:
    cni: str
    mode: str
    version: str = ""
    problem: str = ""  # why it was not measured (its lab did not come up)
    up_seconds: float | None = None
    built: str = ""  # the `built: ...` line when the up also built binaries
    facts: dict[str, str] = field(default_factory=dict)  # `lab status`'s network lines
    runs: int = 0
    walls: list[float] = field(default_factory=list)
    false_failures: dict[str, int] = field(default_factory=dict)  # id -> runs it failed in
    faults: dict[str, str] | None = None  # fault -> "" when localized, else what went wrong
    unexpected_faults: list[str] = field(default_factory=list)  # supported, no expectation
    fault_walls: dict[str, float] = field(default_factory=dict)  # fault -> its run's seconds
    counts: tuple[int, int, int] | None = None  # the last healthy run's passed/skipped/failed
    measured: str = ""  # the day and the commit, when recorded (--record)
    # --faults: only these faults were run, and the row adds them to the network's
    # latest whole row (recorded) instead of replacing it
    only_faults: list[str] = field(default_factory=list)
    # The --policy-timeout its runs took, where the CNI needs more than the suite's
    # default (Cni.policy_timeout); None: the default, and the self-check's 8 s for faults.
    policy_timeout: float | None = None

    @property
    def name(self) -> str:
        return f"{self.cni}/{self.mode}"

    def to_json(self) -> str:
        """One line of --record."""
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(line: str) -> "Network":
        data = json.loads(line)
        data["counts"] = tuple(data["counts"]) if data.get("counts") else None
        return Network(**{k: v for k, v in data.items() if k in Network.__dataclass_fields__})


# ---------------------------------------------------------------- the lab

def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def lab(*args: str) -> tuple[int, list[str]]:
    """`packetwalk lab ...` of this checkout, its output echoed to stderr as it comes."""
    argv = [sys.executable, "-m", "packetwalk.cli", "lab", *args]
    lines = []
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            say(f"    | {lines[-1]}")
    return proc.returncode, lines


def status_facts(text: str) -> dict[str, str]:
    """`lab status`'s "network, as the cluster shows it" lines: {"CNI": ..., "kube-proxy
    mode": ..., "pod MTU": ...}. They are the indented ones; the lab's own are not."""
    facts = {}
    for line in text.splitlines():
        if line.startswith("  ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            if key in ("CNI", "kube-proxy mode", "pod MTU"):
                facts[key] = value
    return facts


def first_word(fact: str | None) -> str:
    """'1450 (the pods' veths on pw-worker)' -> '1450'; a missing fact -> 'unknown'."""
    return fact.split(" (", 1)[0] if fact else "unknown"


def bring_up(net: Network) -> None:
    say(f"== {net.name}: lab down, lab up")
    code, lines = lab("down")
    if code:
        net.problem = f"lab down failed: {lines[-1] if lines else f'exit {code}'}"
        return
    start = time.monotonic()
    mode = () if net.mode == NO_KUBE_PROXY else ("--proxy-mode", net.mode)
    code, lines = lab("up", "--cni", net.cni, *mode)
    net.up_seconds = time.monotonic() - start
    net.built = next((line for line in lines if line.startswith("built: ")), "")
    if code:
        net.problem = f"lab up failed: {lines[-1] if lines else f'exit {code}'}"


# ---------------------------------------------------------------- the suites

def suites(*extra: str, paths: tuple[str, ...] = SUITES) -> tuple[SuiteRun | None, float]:
    """One run of the suites; None when it outran run_pytest's timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        try:
            run = run_suites(Path(tmp), *paths, extra=extra)
        except subprocess.TimeoutExpired:
            run = None
        return run, time.monotonic() - start


def policy_args(net: Network, under_fault: bool) -> tuple[str, ...]:
    """--policy-timeout for a run: the CNI's own where it needs longer, else the suite's
    default on a healthy run and the self-check's 8 s under a fault."""
    if net.policy_timeout is not None:
        return ("--policy-timeout", f"{net.policy_timeout:g}")
    return ("--policy-timeout", f"{SELFCHECK_POLICY_TIMEOUT:g}") if under_fault else ()


def healthy_runs(net: Network, runs: int) -> None:
    for i in range(1, runs + 1):
        run, wall = suites(*policy_args(net, under_fault=False))
        net.runs, net.walls = i, [*net.walls, wall]
        bad = ["(the run timed out)"] if run is None else sorted(run.failed | run.errors)
        for test_id in bad:
            net.false_failures[test_id] = net.false_failures.get(test_id, 0) + 1
        if run is not None:
            net.counts = (len(run.passed), len(run.skipped), len(run.failed | run.errors))
        say(f"  run {i}/{runs}: {wall:.0f}s, {len(bad)} failed or errored {' '.join(bad)}")


def read_facts(net: Network) -> None:
    done = subprocess.run([sys.executable, "-m", "packetwalk.cli", "lab", "status"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    net.facts = status_facts(done.stdout)
    for key, value in net.facts.items():
        say(f"  {key}: {value}")


def not_localized(expected: Expectation, run: SuiteRun | None) -> str:
    """"" when exactly the expected ids failed and were blocked (either-way ids aside)
    and nothing else errored; else what differed (expected.mismatches)."""
    if run is None:
        return "the run timed out"
    wrong = mismatches(expected, run.failed, run.error_texts)
    return "; ".join(f"{kind} {len(ids)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
                     for kind, ids in wrong.items())


def not_stopped(expected: StopsAtStart, done: subprocess.CompletedProcess | None) -> str:
    """"" when the run stopped at session start as expected; else what differed
    (expected.stop_mismatch)."""
    if done is None:
        return "the run timed out"
    return stop_mismatch(expected, done.returncode, done.stdout, done.stderr)


def stopped_run() -> tuple[subprocess.CompletedProcess | None, float]:
    """The run tests/lab/test_control_plane.py makes under a control-plane fault; None
    when it outran the timeout (it never reached its one line)."""
    start = time.monotonic()
    try:
        done = run_pytest(*AT_START_ARGS, timeout=AT_START_TIMEOUT)
    except subprocess.TimeoutExpired:
        done = None
    return done, time.monotonic() - start


def judged_run(name: str, net: Network) -> tuple[str, float]:
    """With `name` injected: its run, judged by its expectation on the network's CNI
    ("" when localized: its ids, an intermittent fault's flaky reading, or for the
    control plane its one line at session start), and its wall."""
    if name in EXPECTED:
        # As tests/selfcheck/test_fault_localization.py runs them.
        run, wall = suites(*policy_args(net, under_fault=True))
        return not_localized(expected_on(net.cni, name), run), wall
    if name in EXPECTED_FLAKY:
        # As tests/selfcheck/test_flaky.py runs it.
        flaky = EXPECTED_FLAKY[name]
        run, wall = suites(*flaky.args(), paths=flaky.paths)
        if run is None:
            return "the run timed out", wall
        return flaky_mismatch(flaky, run.passed, run.failed, run.flaky, run.failed_attempts,
                              run.error_texts, run.verdict), wall
    done, wall = stopped_run()
    return not_stopped(STOPS_AT_START[name], done), wall


def unexpected(supported: frozenset[str]) -> list[str]:
    """The supported faults the matrix has no expectation to judge by. Its labs are
    IPv4: a dual-stack lab's own fault is pinned in tests/lab/test_dual_stack.py
    (tests/selfcheck/expected.py EXPECTED_DUAL)."""
    from packetwalk.lab import faults

    return sorted(supported - set(EXPECTED) - set(EXPECTED_FLAKY) - set(STOPS_AT_START)
                  - faults.DUAL_ONLY_FAULTS)


def applicable(cni: str, only: list[str] | None = None) -> list[str]:
    """The faults the matrix runs on `cni`, in order (all it can judge, or those of
    `only` among them). The control plane's last: a controller that does not come back
    stops every later fault, and there it costs none of the network's own."""
    supported = cni_named(cni).faults_supported
    return [name for name in [*EXPECTED, *EXPECTED_FLAKY, *STOPS_AT_START]
            if name in supported and (not only or name in only)]


def fault_runs(net: Network) -> None:
    from packetwalk.lab import faults
    from packetwalk.lab.errors import LabError

    net.faults = {}
    net.unexpected_faults = unexpected(cni_named(net.cni).faults_supported)
    chosen = applicable(net.cni, net.only_faults)
    for i, name in enumerate(chosen):
        expected = EXPECTED.get(name) or STOPS_AT_START.get(name)  # udp-lossy: none, any node
        node = expected.node if expected else None
        try:
            faults.inject(name, node)
            why, wall = judged_run(name, net)
        except (LabError, subprocess.SubprocessError, OSError) as e:
            net.faults[name] = f"inject failed: {e}"
        finally:
            try:
                faults.heal()
            except (LabError, subprocess.SubprocessError, OSError) as e:
                net.faults[name] = f"heal failed: {e}"
        if name in net.faults:
            # A half-injected or half-healed fault would blur every later one.
            say(f"  {name}: {net.faults[name]}; the remaining faults are left out")
            for later in chosen[i + 1:]:
                net.faults[later] = f"not run: {name} went wrong before it"
            return
        net.faults[name], net.fault_walls[name] = why, round(wall, 1)
        say(f"  {name}: {wall:.0f}s, {'localized' if not why else why}")


# ---------------------------------------------------------------- the table

def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def mode_cell(net: Network) -> str:
    seen = first_word(net.facts.get("kube-proxy mode")) if net.facts else net.mode
    return net.mode if seen == net.mode else f"{net.mode} (cluster: {seen})"


def faults_cell(net: Network) -> str:
    if net.faults is None:
        return "not run"
    missed = [name for name, why in net.faults.items() if why]
    cell = f"{len(net.faults) - len(missed)}/{len(net.faults)}"
    return cell + (f" (not: {', '.join(missed)})" if missed else "")


def cells(net: Network) -> list[str]:
    if net.problem:
        return [net.cni, net.version, net.mode, "-", "-", "-", "-", "-", seconds(net.up_seconds)]
    counts = "-" if net.counts is None else "/".join(str(n) for n in net.counts)
    return [net.cni, net.version, mode_cell(net), first_word(net.facts.get("pod MTU")), counts,
            f"{sum(net.false_failures.values())} in {net.runs}", faults_cell(net),
            seconds(statistics.median(net.walls)) if net.walls else "-",
            seconds(net.up_seconds) + (" *" if net.built else "")]


def notes(nets: list[Network]) -> list[str]:
    out = []
    for net in nets:
        if net.problem:
            out.append(f"{net.name}: not measured: {net.problem}")
            continue
        if net.policy_timeout is not None:
            out.append(f"{net.name}: run with --policy-timeout {net.policy_timeout:g} "
                       "(its NetworkPolicy changes take longer here than the suite's default)")
        if net.facts.get("CNI"):
            out.append(f"{net.name}: the cluster shows CNI: {net.facts['CNI']}")
        for test_id, count in sorted(net.false_failures.items()):
            out.append(f"{net.name}: false failure {test_id} in {count} of {net.runs} runs")
        for name, why in (net.faults or {}).items():
            if why:
                out.append(f"{net.name}: {name} not localized: {why}")
        if net.unexpected_faults:
            out.append(f"{net.name}: not checked (no expectation in the self-check): "
                       f"{', '.join(net.unexpected_faults)}")
        if net.fault_walls:
            out.append(f"{net.name}: each fault's run: " + ", ".join(
                f"{name} {wall:.0f} s" for name, wall in net.fault_walls.items()))
        if net.built:
            out.append(f"{net.name}: * the lab up also built ({net.built.removeprefix('built: ')})")
        if net.measured:
            out.append(f"{net.name}: measured {net.measured}")
    return out


def render(nets: list[Network], markdown: bool) -> str:
    rows = [list(HEADERS)] + [cells(net) for net in nets]
    if markdown:
        esc = [[cell.replace("|", "\\|") for cell in row] for row in rows]
        lines = ["| " + " | ".join(row) + " |" for row in esc]
        lines.insert(1, "|" + "|".join("---" for _ in HEADERS) + "|")
        return "\n".join(lines + [""] + [f"- {note}" for note in notes(nets)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return "\n".join(lines + [""] + notes(nets))


def healthy(net: Network) -> bool:
    return (not net.problem and not net.false_failures
            and not any((net.faults or {}).values()))


# ---------------------------------------------------------------- main

def measured_on(record: Path | None = None) -> str:
    """'2026-11-30, commit 1a2b3c4': what a recorded row was measured on, "with
    uncommitted changes" when a tracked file differs from it. The record file itself
    is left out: the run's own earlier rows are not a change to what was measured."""
    head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"],
                          capture_output=True, text=True, check=False).stdout.strip()
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=False).stdout.splitlines()
    own = record.resolve() if record is not None else None
    dirty = [line for line in changed if (ROOT / line[3:].strip()).resolve() != own]
    return (f"{datetime.date.today().isoformat()}, commit {head or 'unknown'}"
            + (" with uncommitted changes" if dirty else ""))


def measure(nets: list[Network], runs: int, with_faults: bool, record: Path | None = None,
            only: list[str] | None = None) -> None:
    for net in nets:
        net.only_faults = list(only or [])
        bring_up(net)
        if net.problem:
            say(f"  {net.problem}")
        else:
            healthy_runs(net, runs)
            read_facts(net)
            if with_faults:
                fault_runs(net)
        if record is not None:
            net.measured = measured_on(record)
            with record.open("a") as out:
                out.write(net.to_json() + "\n")
            say(f"  recorded in {record}")


def recorded(paths: list[Path], cnis: list[str], modes: list[str]) -> list[Network]:
    """The latest recorded row of each network asked for, in the matrix's order."""
    latest: dict[str, Network] = {}
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                net = Network.from_json(line)
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"--from {path}:{number}: not a recorded row ({e})") from None
            base = latest.get(net.name)
            if net.only_faults and base is not None and base.faults is not None:
                # A --faults row adds its faults to the whole row before it.
                base.faults = {**base.faults, **(net.faults or {})}
                base.fault_walls = {**base.fault_walls, **net.fault_walls}
                base.unexpected_faults = net.unexpected_faults  # the newer code's gaps
                # The network's facts as read again then (the newer code's reading).
                base.facts = net.facts or base.facts
                base.measured += f"; {', '.join(net.only_faults)} {net.measured}"
            else:
                latest[net.name] = net
    return [latest[net.name] for net in networks(cnis, modes) if net.name in latest]


def networks(cnis: list[str], modes: list[str]) -> list[Network]:
    """Each CNI with each kube-proxy mode, in that order; a CNI that replaces kube-proxy
    once, as NO_KUBE_PROXY."""
    out = []
    for c in cnis:
        cni = cni_named(c)
        for m in [NO_KUBE_PROXY] if cni.replaces_kube_proxy else modes:
            out.append(Network(c, m, cni.versions(), policy_timeout=cni.policy_timeout))
    return out


def main() -> int:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cni", metavar="A,B", help=f"the CNIs (default all: {', '.join(names())})")
    ap.add_argument("--proxy-mode", metavar="A,B",
                    help=f"kube-proxy's modes (default all: {', '.join(PROXY_MODES)})")
    ap.add_argument("--runs", type=int, default=5, metavar="N",
                    help="healthy runs of the suites per network (default 5)")
    ap.add_argument("--no-faults", action="store_true", help="leave out the self-check's faults")
    ap.add_argument("--faults", metavar="A,B",
                    help="run only these faults; with --record the row adds them to the "
                         "network's latest recorded row (--runs 0: no healthy runs)")
    ap.add_argument("--markdown", action="store_true",
                    help="print the table as Markdown (for docs/networks.md)")
    ap.add_argument("--record", metavar="FILE", type=Path,
                    help="append each network's row to FILE (JSON lines) once it is measured")
    ap.add_argument("--from", dest="from_", metavar="FILE,FILE",
                    help="print the table from recorded rows (--record); the lab is not touched")
    args = ap.parse_args()
    try:
        cnis = pick(args.cni, names(), "CNI")
        modes = pick(args.proxy_mode, PROXY_MODES, "proxy mode")
        only = pick(args.faults, [*EXPECTED, *EXPECTED_FLAKY, *STOPS_AT_START],
                    "fault") if args.faults is not None else None
        if only is not None and args.no_faults:
            raise ValueError("--faults and --no-faults: choose one")
        if args.runs < (0 if only else 1):
            raise ValueError(f"--runs {args.runs}: at least {0 if only else 1}")
        if args.from_:
            paths = [Path(p) for p in args.from_.split(",")]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise ValueError(f"--from: no such file: {', '.join(missing)}")
            nets = recorded(paths, cnis, modes)
            if not nets:
                raise ValueError(f"--from {args.from_}: no recorded row of the networks asked for")
        elif args.record is not None and not args.record.parent.is_dir():
            raise ValueError(f"--record {args.record}: no such directory {args.record.parent}")
    except ValueError as e:
        print(f"matrix: {e}", file=sys.stderr)
        return 2
    if args.from_:
        print(render(nets, args.markdown))
        return 0 if all(healthy(net) for net in nets) else 1
    if os.geteuid() != 0:
        print("matrix: needs root (it brings the lab down and up)", file=sys.stderr)
        return 1
    nets = networks(cnis, modes)
    interrupted = False
    try:
        measure(nets, args.runs, not args.no_faults, args.record, only)
    except KeyboardInterrupt:
        interrupted = True
        say("matrix: interrupted; the table holds what was measured so far")
    finally:
        # Also after an unexpected error: never leave a non-default network behind.
        print(render([n for n in nets if n.up_seconds is not None or n.problem], args.markdown),
              flush=True)
        say("== restoring the default lab: lab down, lab up")
        restored = lab("down")[0] == 0 and lab("up")[0] == 0
        if not restored:
            say("matrix: the default lab did not come back: run `packetwalk lab up`")
    return 0 if restored and not interrupted and all(healthy(net) for net in nets) else 1

if __name__ == "__main__":
    sys.exit(main())
