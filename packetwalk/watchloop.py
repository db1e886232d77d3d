"""The probe loops of a watch, as the bash that runs them in a client pod. Pure.

A `kubectl exec` per probe cannot keep 5 probes a second per cell going (an exec costs
more than a probe, and tens of cells share a controller). So each watched cell gets a
loop of its own inside its client pod: one bash, started through the pod's kept shell
(podexec.py) and detached from it, that sends the cell's probe (probes.try_step, the
same curl or /dev/udp try the suites make, waiting WAIT for an answer) every INTERVAL
seconds, each in the background so a probe waiting out its timeout does not hold back
the next send, and appends one line per probe to a file in the pod:

    <send time, µs of the pod's clock (EPOCHREALTIME)> <exit code> <µs it took> <answer or error>

The controller reads the files back by exec when the watch ends (collect_script).

WAIT is 0.5 s, not the suites' 3-5 s: every cell of a placement's client runs in one pod
(16 loops in the first node's client), limited to 128 MiB, and while a fault makes tries
time out each loop holds WAIT / INTERVAL of them in flight. Measured on this machine with
16 loops all timing out (tests' listeners that never answer): 1 s held 348 processes,
122 MB PSS; 0.5 s holds about 200, 75 MB. An answer slower than 0.5 s, a hundred times
a cluster's usual round trip, counts as lost.

The loops make only the probes a run makes anyway, at a higher rate; they listen on
nothing and run nothing they are sent. Each ends by itself once the lease file's time
(epoch seconds) has passed or the file is gone: the controller renews the lease while
the watch lasts, so a controller that dies (kill -9) leaves loops that stop within
LEASE seconds, before the next run's sweep even deletes their pods.
"""

from __future__ import annotations

from packetwalk.probes import Target, Try, parse_tries, try_step

DIRECTORY = "/tmp/pw-watch"  # in the client pods (their root file system is writable)
LEASE = 60  # seconds a loop goes on without the controller renewing its lease
RENEW = 15  # seconds between renewals (well within LEASE)
WAIT = 0.5  # seconds one probe of a loop waits for its answer (see the module doc)
_NOW_US = "${EPOCHREALTIME/[.,]/}"  # the pod's wall clock in µs (bash >= 5.0)


def loop_script(name: str, target: Target, request: str, interval: float,
                directory: str = DIRECTORY, host: str = "") -> str:
    """One cell's loop: the suites' own try (probes.try_step) at `target` every `interval`
    seconds on a fixed schedule, so a slow fork does not drift the rate; a loop that falls
    behind starts again from now rather than sending a burst. Each try is one background
    job that writes its own line, its send time first (one write: the loop's tries in
    flight append to one file), with as few processes as a try allows (the job, the
    command substitution, curl; for UDP `timeout` and `dd`): a pod holds every loop of
    its cells, tries in flight add up while they time out. `name` names its file (a plain
    word); `host` a name to dial instead of the target's address. It ends when the lease ends, once its last probes have written their lines."""
    tick = round(interval * 1e6)
    # The send time is the try's own start, taken in the job after its fork: a fork
    # delayed by a busy node moves the time with the send.
    step = try_step(target.protocol, host or target.ip, target.port, request, WAIT,
                    lead='"${t/[.,]/}" ')
    return (f"set -f; d={directory}; f=$d/{name}.log; next={_NOW_US}; "
            f'while read -r until <"$d/lease" && (( ${{EPOCHREALTIME%[.,]*}} < until )); do '
            f'{{ {step}; }} >>"$f" & '
            f"next=$(( next + {tick} )); left=$(( next - {_NOW_US} )); "
            f"if (( left > 0 )); then sleep $(( left / 1000000 )).$(printf %06d "
            f"$(( left % 1000000 ))); else next={_NOW_US}; fi; done; wait")


def lease_script(until: int, directory: str = DIRECTORY) -> str:
    """Let the loops run until `until` (epoch seconds of the pod's clock); 0 stops them."""
    return f"mkdir -p {directory} && echo {until} >{directory}/lease.new && " \
           f"mv {directory}/lease.new {directory}/lease"


def start_script(loops: dict[str, str], until: int, directory: str = DIRECTORY) -> str:
    """The lease, then every loop of one pod detached from the shell that starts them:
    no stream of theirs reaches the exec (so the kept shell's command ends at once)."""
    starts = " ".join(f"bash -c {_single(script)} </dev/null >/dev/null 2>&1 &"
                      for script in loops.values())
    return (f"rm -rf {directory} && {lease_script(until, directory)} && {{ {starts} }}; "
            f"echo started {len(loops)}")


def clock_script() -> str:
    """The pod's clock, for clock_offset."""
    return "echo $EPOCHREALTIME"


def collect_script(directory: str = DIRECTORY) -> str:
    """Every loop's lines, each prefixed with its file: `name.log:<line>`."""
    return f"cd {directory} && for f in *.log; do [ -e \"$f\" ] && grep -H '' \"$f\"; done; true"


def parse_collected(text: str, protocols: dict[str, str],
                    wait: float = WAIT) -> dict[str, list[tuple[float, Try]]]:
    """collect_script's output -> per loop name, (send time in epoch seconds of the pod's
    clock, the try) for each probe; lines of unknown loops or without a time are left out
    (a probe cut off mid-line when the lease ended)."""
    found: dict[str, list[tuple[float, Try]]] = {name: [] for name in protocols}
    for line in text.splitlines():
        file, _, rest = line.partition(":")
        name = file.removesuffix(".log")
        sent, _, result = rest.partition(" ")
        if name not in protocols or not sent.isdigit():
            continue
        tries = parse_tries(result, protocols[name], wait)
        if tries:
            found[name].append((int(sent) / 1e6, tries[0]))
    return found


def _single(script: str) -> str:
    """`script` as one single-quoted bash word."""
    return "'" + script.replace("'", "'\\''") + "'"
