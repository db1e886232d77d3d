"""The vantage point outside the cluster, and where egress goes.

North-south probes run from outside the cluster: on the lab from its outside
host (the `pw-outside` network namespace, entered with `ip netns exec`, which
needs root), on any other cluster from the machine pytest runs on. They use
the same Prober as pod probes: RoutedExec sends a vantage Source to a local
process and every other Source to the pod exec API.

Nothing here is hard-coded to a public address: without `--external-target`
(and off the lab) egress tests skip, so air-gapped clusters run everything.
Targets are per IP family (one --external-target each): on a dual-stack cluster the
egress test of a family asks its family's target, and skips without one.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from packetwalk import aboutlab
from packetwalk.aboutlab import LabInfo
from packetwalk.families import IPV4, IPV6, NAMES, family_of
from packetwalk.probes import ExecFn, ExecResult, ProbeError, Source

VANTAGE_NAMESPACE = ""  # a Source outside any namespace is the vantage point
NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class Vantage:
    """Where outside probes run: a name for reports, the command prefix, and
    why it cannot be used (None when it can)."""

    name: str
    prefix: tuple[str, ...]
    unusable: str | None = None

    def source(self, *, ip: str = "") -> Source:
        """The vantage point as a probe's source; `ip` labels it by its address in the
        test's family, once known (OutsideWalk.vantage_address). Keyword-only: a pod's
        source() takes a family in that place."""
        return Source(self.name, VANTAGE_NAMESPACE, "outside the cluster", ip, 0)

    def repro(self, command: str) -> str:
        return " ".join((*self.prefix, command))


def is_lab(lab: LabInfo, node_ips: list[str], netns_present: bool) -> bool:
    """The cluster under test is the lab: its outside namespace exists here and
    every node under test sits on the lab's underlay (pure)."""
    return netns_present and bool(node_ips) and all(
        ip_address(ip) in lab.underlay for ip in node_ips)


def choose_vantage(mode: str, lab: LabInfo | None, root: bool, hostname: str) -> Vantage:
    """--vantage auto: the lab's outside host when testing the lab, else here (pure)."""
    if mode == "auto" and lab:
        ns = lab.outside_netns
        return Vantage(ns, ("ip", "netns", "exec", ns),
                       None if root else f"entering {ns} (ip netns exec) needs root")
    return Vantage(hostname, ())


def lab_present(node_ips: list[str]) -> LabInfo | None:
    """The lab's info when the cluster under test is the lab (as it tells it), else None."""
    lab = aboutlab.read()
    if lab and is_lab(lab, node_ips, (NETNS_DIR / lab.outside_netns).exists()):
        return lab
    return None


def vantage_for(mode: str, node_ips: list[str]) -> Vantage:
    return choose_vantage(mode, lab_present(node_ips), os.geteuid() == 0, socket.gethostname())


@dataclass(frozen=True)
class ExternalTarget:
    """An HTTP server outside the cluster that answers /clientip with ip:port."""

    host: str
    port: int

    @property
    def family(self) -> str | None:
        """The family of an address literal; None for a host name (no family of its own)."""
        return family_of(self.host)

    def label(self) -> str:
        """As --external-target takes it: an IPv6 literal in brackets."""
        return f"[{self.host}]:{self.port}" if self.family == IPV6 else f"{self.host}:{self.port}"


def parse_target(text: str) -> ExternalTarget:
    """'host:port' or '[v6]:port' -> ExternalTarget; ValueError with the reason."""
    found = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", text.strip())
    if not found or not 0 < int(found.group(2)) < 65536:
        raise ValueError(f"--external-target {text!r}: expected host:port")
    return ExternalTarget(found.group(1), int(found.group(2)))


def parse_targets(texts: list[str] | tuple[str, ...]) -> tuple[ExternalTarget, ...]:
    """Every --external-target, at most one per family: the egress test of a family
    takes its family's. A host name has no family, so it counts as a kind of its own
    (at most one); ValueError naming the two that clash."""
    targets = tuple(parse_target(text) for text in texts)
    seen: dict[str | None, ExternalTarget] = {}
    for target in targets:
        if target.family in seen:
            kind = NAMES[target.family] if target.family else "host-name"
            raise ValueError(f"--external-target {seen[target.family].label()} and "
                             f"{target.label()}: at most one {kind} target (one per family)")
        seen[target.family] = target
    return targets


def target_for(targets: tuple[ExternalTarget, ...], family: str | None,
               suffixed: bool) -> ExternalTarget | None:
    """The target of `family`'s egress test: the one of that family; on a single-stack
    cluster (ids without a family) also a host name, whatever it resolves to, as before
    families. A hop without a family takes the first."""
    if family is None:
        return targets[0] if targets else None
    own = next((t for t in targets if t.family == family), None)
    if own is not None or suffixed:
        return own  # dual-stack: a name could resolve to either family, so none
    return next((t for t in targets if t.family is None), None)


def default_targets(lab: LabInfo | None) -> tuple[ExternalTarget, ...]:
    """The lab's outside host in each family the lab has, when testing the lab (an
    IPv6-only lab names its IPv6 address as outside_host too); elsewhere none."""
    if not lab:
        return ()
    hosts = {IPV4: lab.outside_host, IPV6: lab.outside_host6 or lab.outside_host}
    return tuple(ExternalTarget(hosts[family], lab.outside_port)
                 for family in lab.ip_families if family in hosts)


def parse_ip_list(text: str | None) -> tuple[str, ...] | None:
    """--expected-source-ips a,b -> ('a', 'b'); each must be an IP address, of either family."""
    if not text:
        return None
    ips = tuple(part.strip() for part in text.split(",") if part.strip())
    for ip in ips:
        ip_address(ip)  # ValueError names the bad one
    return ips


_ROUTE_SRC = re.compile(r"\bsrc (\S+)")


def route_source(ip_route_get: str) -> str | None:
    """The source address in `ip -o route get X` output (pure)."""
    found = _ROUTE_SRC.search(ip_route_get)
    return found.group(1) if found else None


class LocalExec:
    """Run a probe command at the vantage point (a local process)."""

    def __init__(self, vantage: Vantage):
        self._vantage = vantage

    def __call__(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        if self._vantage.unusable:
            raise ProbeError(f"cannot probe from {self._vantage.name}: {self._vantage.unusable}")
        argv = [*self._vantage.prefix, *command]
        started = time.monotonic()
        try:
            done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError as exc:
            raise ProbeError(f"{argv[0]} is missing at {self._vantage.name}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ProbeError(f"{' '.join(argv)} still running after {timeout:.0f}s") from exc
        return ExecResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class RoutedExec:
    """Pod sources go through the exec API, the vantage source runs locally."""

    def __init__(self, pod_exec: ExecFn, vantage: Vantage):
        self._pod_exec, self._local = pod_exec, LocalExec(vantage)

    def __call__(self, src: Source, command: list[str], timeout: float) -> ExecResult:
        if src.namespace == VANTAGE_NAMESPACE:
            return self._local(src, command, timeout)
        return self._pod_exec(src, command, timeout)
