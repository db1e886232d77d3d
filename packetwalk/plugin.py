"""pytest options and hooks: the run's lifecycle around the tests.

One process owns the cluster side of a run: the xdist controller, or the
only process without xdist. It checks the cluster (one clear line and exit
on bad input), deploys the workloads once, hands the inventory to workers,
and always cleans up. Workers only read.

The plugin stays inert unless the run includes a suite (a path under or
containing suites/): `pytest tests/unit` needs no cluster.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.rest import ApiException

from packetwalk import verdict
from packetwalk.cluster import ClusterError, Target, choose_target, connect, load_configuration
from packetwalk.diagnose import conclusion
from packetwalk.hops import HOST_NETWORK, hop_of
from packetwalk.hops import params as hop_params
from packetwalk.inventory import DEBUG, Inventory, WorkloadError
from packetwalk.placement import Node, build_placements, choose_nodes
from packetwalk.probes import ProbeError
from packetwalk.runlock import remove_lock
from packetwalk.runs import Heartbeat, Run, delete_run, mark_kept, sweep_stale
from packetwalk.vantage import default_target, parse_ip_list
from packetwalk.walk import HopFailure
from packetwalk.workloads import DEFAULT_IMAGE, ImageUnavailable, bring_up, plan

# The report's hooks ride along with the engine (also via the pytest11 entry point).
pytest_plugins = ["packetwalk.report.plugin"]

RECORD = "packetwalk"  # user_properties key of an observation record
DIAGNOSIS = "diagnosis"  # user_properties key of a failed hop's diagnosis (diagnose/)
CAPTURE_DIR = "reports/captures"  # --capture-packets pcaps, under the directory pytest runs in
POLICY_LOCK = "network-policy"


@dataclass
class State:
    """What this process knows about the run."""

    target: Target
    run: Run
    nodes: list[Node]
    dns_ip: str | None
    configuration: Configuration
    controller: bool
    inventory: Inventory | None = None
    records: list[dict] = field(default_factory=list)
    diagnoses: list[dict] = field(default_factory=list)
    pods_planned: int = 0
    notes: list[str] = field(default_factory=list)
    heartbeat: Heartbeat | None = None
    cleaned: bool = False

    def for_worker(self) -> str:
        return json.dumps({
            "target": [self.target.kubeconfig, self.target.context, self.target.source],
            "run": self.run.id, "nodes": [vars(n) for n in self.nodes], "dns_ip": self.dns_ip,
            "inventory": self.inventory.to_json() if self.inventory else None})

    @staticmethod
    def from_controller(text: str) -> State:
        data = json.loads(text)
        target = Target(*data["target"])
        return State(target=target, run=Run(data["run"]), nodes=[Node(**n) for n in data["nodes"]],
                     dns_ip=data["dns_ip"], configuration=load_configuration(target),
                     controller=False,
                     inventory=Inventory.from_json(data["inventory"]) if data["inventory"]
                     else None)


STATE = pytest.StashKey[State]()


def state_of(config: pytest.Config) -> State | None:
    return config.stash.get(STATE, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("packetwalk", "packetwalk: Kubernetes network conformance")
    group.addoption("--kubeconfig", metavar="PATH",
                    help="kubeconfig of the cluster under test (default: KUBECONFIG, "
                         "~/.kube/config, then the lab's)")
    group.addoption("--context", metavar="NAME", help="kubeconfig context to use")
    group.addoption("--image", default=DEFAULT_IMAGE,
                    help="agnhost image for every pod (mirror it for air-gapped clusters)")
    group.addoption("--image-pull-secret", metavar="FILE",
                    help="a .dockerconfigjson file; becomes the pods' imagePullSecret")
    group.addoption("--nodes", metavar="A[,B]",
                    help="the schedulable nodes to place workloads on, client node first "
                         "(default: the first two by name); one node skips cross-node tests")
    group.addoption("--keep", action="store_true",
                    help="leave the run's namespaces in place for debugging")
    group.addoption("--ready-timeout", type=float, default=120, metavar="SECONDS",
                    help="how long the run's pods may take to become Ready")
    group.addoption("--no-diagnose", action="store_true",
                    help="report failures as observed, without the narrowing probes (faster when "
                         "many hops fail, e.g. in the self-check)")
    group.addoption("--capture-packets", action="store_true",
                    help="when a hop fails, tcpdump at the client's and the server's node "
                         "while the probe is retried (needs privileged hostNetwork pods); "
                         f"pcaps go to {CAPTURE_DIR}/<run>/")
    group.addoption("--debug-image", default=DEFAULT_IMAGE, metavar="IMAGE",
                    help="image of the --capture-packets debug pods: needs sh, ip, tcpdump, conntrack, "
                         "base64 (default: the agnhost image, which has them)")
    group.addoption("--external-target", metavar="HOST:PORT",
                    help="an HTTP server outside the cluster whose /clientip answers with "
                         "the client's ip:port, for egress tests (default on the lab: its "
                         "outside host; elsewhere none, and egress tests skip)")
    group.addoption("--expected-source-ips", metavar="IP[,IP]",
                    help="the addresses the external target may see for egress "
                         "(default: the client node's InternalIP)")
    group.addoption("--vantage", choices=("auto", "local"), default="auto",
                    help="where north-south probes start: auto = the lab's outside host "
                         "when testing the lab, else here; local = always here")


def targets_cluster(config: pytest.Config) -> bool:
    """Whether this run includes a suite: an argument path under or containing suites/."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if "suites" in path.parts or (path / "suites").is_dir():
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        payload = config.workerinput.get(RECORD)
        if payload:
            config.stash[STATE] = State.from_controller(payload)
        return
    if config.option.help or config.option.version or not targets_cluster(config):
        return
    run = Run.new()
    try:
        target = choose_target(config.getoption("kubeconfig"), config.getoption("context"),
                               dict(os.environ), Path.home())
        configuration, facts = connect(target, run.namespace)
        wanted = config.getoption("nodes")
        nodes = choose_nodes(list(facts.nodes), wanted.split(",") if wanted else None)
        # Bad north-south options are the user's setup: one line before any test.
        default_target(config.getoption("external_target"), lab=False)
        parse_ip_list(config.getoption("expected_source_ips"))
    except (ClusterError, ValueError) as exc:
        raise pytest.UsageError(f"packetwalk: {exc}") from None
    state = State(target, run, nodes, facts.dns_ip, configuration, controller=True)
    config.stash[STATE] = state
    config.pluginmanager.register(Controller(state, config), "packetwalk-controller")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize hop tests from hops.py: placement, variant, protocol, in that order."""
    hop = hop_of(metafunc.definition)
    if hop is None:
        return
    state = state_of(metafunc.config)
    names, params = hop_params(hop, build_placements(state.nodes) if state else None)
    # Only tests built on the walk fixtures: the plugin is installed globally and
    # another project's test_cluster_ip is none of our business.
    if names and set(names) <= set(metafunc.fixturenames):
        metafunc.parametrize(names, [
            pytest.param(*p.values, id=p.id,
                         marks=[pytest.mark.skip(reason=p.skip)] if p.skip else [])
            for p in params])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Extra -k words: the hop's name and `host-network` for pod<->node hops."""
    for item in items:
        hop = hop_of(item)
        if hop is None:
            continue
        item.extra_keyword_matches.add(hop.name)
        if hop.layer == HOST_NETWORK:
            item.extra_keyword_matches.add("host-network")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A probe that could not run is an ERROR, never a network FAILURE.

    Probes run in the test body, so their ProbeError arrives in the call
    phase; reporting it as a setup-phase failure is what makes pytest,
    xdist and JUnit count it as an error.
    """
    report = yield
    if call.excinfo is None:
        return report
    if call.excinfo.errisinstance((ProbeError, WorkloadError)):
        # The message already says what broke and how to reproduce it; the
        # traceback through the exec client would only bury it.
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
        if call.when == "call":
            report.when = "setup"
    elif call.excinfo.errisinstance(HopFailure):
        report.longrepr = str(call.excinfo.value)
    return report


def _read_pull_secret(config: pytest.Config) -> bytes | None:
    path = config.getoption("image_pull_secret")
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ClusterError(f"--image-pull-secret {path}: {exc.strerror}") from exc


class Controller:
    """Hooks of the one process that owns the run's cluster side."""

    def __init__(self, state: State, config: pytest.Config):
        self.state, self.config = state, config

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Deploy before xdist starts its workers, so they get the inventory."""
        if self.config.option.collectonly:
            return
        state = self.state
        started = time.monotonic()
        self._arm_cleanup()
        api = ApiClient(state.configuration)
        try:
            swept = sweep_stale(api, state.run)
            if swept:
                state.notes.append(f"swept namespaces of dead runs: {', '.join(swept)}")
            for name in swept:  # their lock files, if they ran on this host
                remove_lock(name.removeprefix("pw-").removesuffix("-peer"), POLICY_LOCK)
            secret = _read_pull_secret(self.config)
            capture = self.config.getoption("capture_packets")
            debug_image = self.config.getoption("debug_image") if capture else None
            state.pods_planned = sum(1 for _, o in plan(state.run, state.nodes,
                                                        debug_image=debug_image)
                                     if o["kind"] == "Pod")
            state.heartbeat = Heartbeat(api, state.run)
            state.inventory = bring_up(api, state.run, state.nodes, state.dns_ip,
                                       self.config.getoption("image"), secret,
                                       self.config.getoption("ready_timeout"), debug_image)
            if capture and DEBUG in state.inventory.errors:
                state.notes.append(f"--capture-packets skipped, the run goes on without it: "
                                   f"{state.inventory.errors[DEBUG]}")
            state.heartbeat.start()
            took = time.monotonic() - started
            unusable = sorted(set(state.inventory.errors) - {DEBUG})
            state.notes.append(f"workloads ready in {took:.1f}s" if not unusable else
                               f"workloads settled in {took:.1f}s; not ready: "
                               f"{', '.join(unusable)} (their tests error)")
        except (ClusterError, ImageUnavailable) as exc:
            raise pytest.UsageError(f"packetwalk: {exc}") from None
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The cluster went away or refused mid-deploy: still the setup, not the network.
            reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else exc
            raise pytest.UsageError(
                f"packetwalk: deploying run {state.run.id} failed: {reason}") from None

    def _arm_cleanup(self) -> None:
        """Cleanup must survive Ctrl-C, SIGTERM (CI cancelling a job) and errors.

        SIGTERM becomes KeyboardInterrupt, which pytest unwinds normally into
        sessionfinish/unconfigure; atexit is the last resort.
        """
        def on_sigterm(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, on_sigterm)
        atexit.register(self.cleanup)

    def cleanup(self) -> None:
        state = self.state
        if state.cleaned or state.heartbeat is None:
            return  # nothing deployed (collect-only, or failed before deploying)
        state.cleaned = True
        state.heartbeat.stop()
        remove_lock(state.run.id, POLICY_LOCK)
        api = ApiClient(state.configuration)
        try:
            if self.config.getoption("keep"):
                mark_kept(api, state.run)
                state.notes.append(
                    f"kept namespaces {state.run.namespace}, {state.run.peer_namespace}; "
                    f"remove with: kubectl delete ns -l packetwalk.io/run={state.run.id}")
                return
            started = time.monotonic()
            delete_run(api, state.run)
            state.notes.append(f"deleted the namespaces of run {state.run.id} "
                               f"in {time.monotonic() - started:.1f}s")
        except Exception as exc:  # noqa: BLE001 - cleanup reports, it must not mask results
            state.notes.append(f"cleanup of run {state.run.id} incomplete: {exc}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """xdist: hand each worker (and any replacement of a crashed one) the run."""
        node.workerinput[RECORD] = self.state.for_worker()

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched) -> None:
        """A worker killed mid-test says nothing about the network: an ERROR, not a FAILURE."""
        report.when = "setup"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.state.records += [value for key, value in report.user_properties
                                   if key == RECORD]
            self.state.diagnoses += [value for key, value in report.user_properties
                                     if key == DIAGNOSIS]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        state = self.state
        if state.heartbeat is None:
            return  # nothing was deployed (--collect-only, or setup failed)
        write = terminalreporter.write_line
        terminalreporter.section("packetwalk")
        nodes = ", ".join(f"{n.name} ({n.ip})" for n in state.nodes)
        write(f"run {state.run.id} on {state.target.describe()}: nodes under test {nodes}")
        write(f"pods created: {state.pods_planned}")
        seconds = sorted(r["seconds"] for r in state.records if r.get("seconds"))
        if seconds:
            p95 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))]
            write(f"probes: {len(seconds)}, latency p50 {statistics.median(seconds):.3f}s "
                  f"p95 {p95:.3f}s max {seconds[-1]:.3f}s")
        if state.records:
            write(f"verdict: {verdict.summarize(state.records)}")
        for line in conclusion.summarize(state.diagnoses):
            write(f"diagnosis: {line}")
        for note in state.notes:
            write(note)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """After xdist has stopped its workers: delete the run (or keep it)."""
        self.cleanup()

    def pytest_unconfigure(self) -> None:
        """Also when sessionstart itself was interrupted (there is no sessionfinish then)."""
        self.cleanup()
