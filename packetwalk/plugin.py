"""pytest options and hooks: the run's lifecycle around the tests.

pytest loads this plugin through its entry point wherever packetwalk is
installed. Until a run asks for packetwalk (options.asked: --packetwalk,
`packetwalk = true` in the ini file, or a conftest.py on the run's paths
that sets `packetwalk = True`, as suites/conftest.py does) it only adds its
options: another project's tests, even in a folder named suites/, are left
alone, and `pytest tests/unit` needs no cluster.

Asked, one process owns the cluster side of a run: the xdist controller, or
the only process without xdist. It checks the options and the cluster (one
clear line and exit on bad input), deploys the workloads once, hands the
run to workers, and always cleans up. Workers only read.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3
from kubernetes.client import Configuration
from kubernetes.client.rest import ApiException

from packetwalk import apiretry, records
from packetwalk.cluster import ClusterError, Target, choose_target, connect, load_configuration
from packetwalk.families import IPV4, IPV6, Walked
from packetwalk.families import walk as walk_families
from packetwalk.hops import HOST_NETWORK, hop_of
from packetwalk.hops import params as hop_params
from packetwalk.inventory import DEBUG, HOST, POLICY_LANES, Inventory, NoAddress, WorkloadError
from packetwalk.options import Options, add_options, asked, parse
from packetwalk.placement import Node, build_placements, choose_nodes
from packetwalk.podexec import PodExec
from packetwalk.probes import ProbeError
from packetwalk.programmed import await_services
from packetwalk.report import plugin as report_plugin
from packetwalk.report import terminal, timeline
from packetwalk.runlock import remove_lock, sweep_stale_locks
from packetwalk.runs import DELETE_WAIT, Heartbeat, Run, delete_run, mark_kept, sweep_stale
from packetwalk.selection import needs_host, needs_policy_lanes, needs_services, workers_for_auto
from packetwalk.selfbind import with_bindings
from packetwalk.tiers import NOT_REQUESTED
from packetwalk.walk import HopBlocked, HopFailure
from packetwalk.watch import WatchResult, run_watch
from packetwalk.watchcells import (
    BY_NAME,
    BY_NAME_PROTOCOLS,
    NOT_WATCHED,
    NOT_WATCHED_UDP_BY_NAME,
    WATCHED,
)
from packetwalk.watchcells import plan as plan_watch
from packetwalk.workloads import ImageUnavailable, bring_up, plan

RUN_STATE = "packetwalk"  # workerinput key of the run's state (State.for_worker)
POLICY_LOCK = "network-policy"
# One lock per NetworkPolicy lane (fixtures/policy.py): a case holds its lane's.
POLICY_LOCKS = tuple(f"{POLICY_LOCK}-lane-{lane}" for lane in POLICY_LANES)
# Any lane's, also of a version with other lanes: what the controller sweeps of killed runs.
POLICY_LANE_LOCK_NAMES = rf"{POLICY_LOCK}-lane-\d+"
# A lane whose baseline (no policy) failed in this run: fixtures/policy.py.
POLICY_BLOCKED_MARKS = tuple(f"{lock}-blocked" for lock in POLICY_LOCKS)
# When a lane's policies or labels last changed in this run (fixtures/policy.py): its
# next baseline is polled until --policy-timeout has passed since then.
POLICY_CHANGED_MARKS = tuple(f"{lock}-changed" for lock in POLICY_LOCKS)
# The cases of one family whose policies blocked nothing they should have (one line
# each): fixtures/policy.py shortens that family's polls once there are two.
POLICY_UNENFORCED_MARKS = {family: f"{POLICY_LOCK}-unenforced-{family}"
                           for family in ("ipv4", "ipv6", "primary")}
POLICY_MARKS = (POLICY_LOCK, *POLICY_LOCKS, *POLICY_BLOCKED_MARKS, *POLICY_CHANGED_MARKS,
                *POLICY_UNENFORCED_MARKS.values())


@dataclass
class State:
    """What this process knows about the run."""

    target: Target
    run: Run
    nodes: list[Node]
    dns_ip: str | None
    configuration: Configuration
    controller: bool
    options: Options
    inventory: Inventory | None = None
    pods_planned: int = 0
    notes: list[str] = field(default_factory=list)
    heartbeat: Heartbeat | None = None
    cleaned: bool = False
    outage: str | None = None  # why the API server last did not answer this process, until it does
    bind_as: str | None = None  # the identity the run binds in its namespaces (selfbind.py)
    # The DNS Service's ready pods (or why unknown), for the inventory (controller only).
    dns_servers: tuple = ()
    dns_servers_unknown: str = ""
    watch: WatchResult | None = None  # --during: the watch, run before the workers start
    # The IP families the run walks (--ip-family over the cluster's), and whether ids
    # carry them: the same on every worker, so they collect the same ids.
    walked: Walked = field(default_factory=lambda: Walked((IPV4,), False))
    # The families as the cluster showed them and what the run walks, in words (the
    # terminal's note, the report's cluster facts); the controller's only.
    families_note: str = ""

    def for_worker(self) -> str:
        return json.dumps({
            "target": [self.target.kubeconfig, self.target.context, self.target.source],
            "run": self.run.id, "nodes": [vars(n) for n in self.nodes], "dns_ip": self.dns_ip,
            "walked": [list(self.walked.families), self.walked.suffixed, self.walked.skip],
            "options": self.options.to_json(),
            "inventory": self.inventory.to_json() if self.inventory else None,
            "watch": self.watch.to_json() if self.watch else None})

    @staticmethod
    def from_controller(text: str) -> State:
        data = json.loads(text)
        target = Target(*data["target"])
        return State(target=target, run=Run(data["run"]), nodes=[Node(**n) for n in data["nodes"]],
                     dns_ip=data["dns_ip"], configuration=load_configuration(target),
                     controller=False, options=Options.from_json(data["options"]),
                     walked=Walked(tuple(data["walked"][0]), *data["walked"][1:]),
                     inventory=Inventory.from_json(data["inventory"]) if data["inventory"]
                     else None,
                     watch=WatchResult.from_json(data["watch"]) if data.get("watch") else None)


STATE = pytest.StashKey[State]()


def state_of(config: pytest.Config) -> State | None:
    return config.stash.get(STATE, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


AUTO_WORKERS = pytest.StashKey[str]()  # why -n auto ran this selection in one process


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """-n auto: one process for a small selection without NetworkPolicy cases
    (selection.workers_for_auto); xdist's own count otherwise, and always when
    PYTEST_XDIST_AUTO_NUM_WORKERS says how many."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or not asked(config):
        return None
    count, why = workers_for_auto(list(config.args), config.invocation_params.dir,
                                  config.rootpath, config.option.keyword, config.option.markexpr)
    if count is not None:
        config.stash[AUTO_WORKERS] = why
    return count


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-html's own, which reads self_contained_html."""
    if hasattr(config, "workerinput"):
        payload = config.workerinput.get(RUN_STATE)
        if payload:
            config.stash[STATE] = State.from_controller(payload)
            config.pluginmanager.register(report_plugin, "packetwalk-report-items")
        return
    if config.option.help or config.option.version or not asked(config):
        return
    options = parse(config)
    run = Run.new()
    try:
        before = report_plugin.load_baseline(options.baseline)
        target = choose_target(options.kubeconfig, options.context, dict(os.environ), Path.home())
        configuration, facts = connect(target, run.namespace, options.pool)
        nodes = choose_nodes(list(facts.nodes), list(options.nodes) if options.nodes else None)
    except (ClusterError, ValueError) as exc:
        raise pytest.UsageError(f"packetwalk: {exc}") from None
    state = State(target, run, nodes, facts.dns_ip, configuration, controller=True,
                  options=options, bind_as=facts.bind_as, dns_servers=facts.dns_servers,
                  dns_servers_unknown=facts.dns_servers_unknown,
                  walked=walk_families(options.ip_family, facts.families))
    state.notes.append(f"placement: {facts.pool}")
    if AUTO_WORKERS in config.stash:
        state.notes.append(f"-n auto: one process: {config.stash[AUTO_WORKERS]}")
    state.families_note = (f"{facts.families.describe()}; walked: "
                           + (state.walked.skip or "+".join(state.walked.families)))
    state.notes.append(f"IP families: {state.families_note}")
    config.stash[STATE] = state
    if options.html:
        config.option.self_contained_html = True  # one file a reviewer can open anywhere
    collector = report_plugin.Collector(config, state, before)
    config.pluginmanager.register(report_plugin, "packetwalk-report-items")
    config.pluginmanager.register(collector, "packetwalk-report")
    config.pluginmanager.register(Controller(state, config, collector), "packetwalk-controller")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize hop tests from hops.py: placement, variant, protocol, in that order."""
    hop = hop_of(metafunc.definition)
    if hop is None:
        return
    state = state_of(metafunc.config)
    if state is None:
        return  # packetwalk was not asked for
    names, params = hop_params(hop, build_placements(state.nodes), state.walked)
    # Only tests built on the walk fixtures: the plugin is installed globally and
    # another project's test_cluster_ip is none of our business.
    if names and set(names) <= set(metafunc.fixturenames):
        metafunc.parametrize(names, [
            pytest.param(*p.values, id=p.id,
                         marks=[pytest.mark.skip(reason=p.skip)] if p.skip else [])
            for p in params])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Extra -k words: the hop's name and `host-network` for pod<->node hops, and the
    IP family walked. A family asked for that the cluster lacks skips every hop test,
    also those with no axis to carry the skip (test_dns_resolv_conf). With --during,
    the hops the watch does not probe skip, saying so."""
    state = state_of(config)
    if state is None:
        return
    for item in items:
        hop = hop_of(item)
        if hop is None:
            continue
        if state.walked.skip:
            item.add_marker(pytest.mark.skip(reason=state.walked.skip))
        item.extra_keyword_matches.add(hop.name)
        # -k ipv6 selects the IPv6 walk on a single-stack IPv6 cluster too, whose ids
        # carry no family (families.py, the id rule).
        family = getattr(item, "callspec", None) and item.callspec.params.get("family")
        if family:
            item.extra_keyword_matches.add(family)
        if hop.layer == HOST_NETWORK:
            item.extra_keyword_matches.add("host-network")
        if state.options.during is not None and hop.name not in WATCHED:
            item.add_marker(pytest.mark.skip(reason=NOT_WATCHED))
        elif state.options.during is not None and hop.name == BY_NAME and \
                getattr(item, "callspec", None) and \
                item.callspec.params.get("protocol") not in BY_NAME_PROTOCOLS:
            item.add_marker(pytest.mark.skip(reason=NOT_WATCHED_UDP_BY_NAME))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Once this process saw the API server stop answering, each later test first
    asks it (seconds, not a call's full retries) and errors at once while it is gone."""
    state = state_of(item.config)
    if state is None or state.outage is None:
        return
    state.outage = apiretry.answering(state.configuration)
    if state.outage is not None:
        raise apiretry.ApiUnreachable(state.outage)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """An end with no address in the test's family (a dual-stack cluster that gave a
    pod, Service or node one family only) skips the test with why: the cluster
    offers no such path to walk, as with one node and a cross-node test."""
    try:
        return (yield)
    except NoAddress as exc:
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A probe that could not run is an ERROR, never a network FAILURE.

    Probes run in the test body, so their ProbeError arrives in the call
    phase; reporting it as a setup-phase failure is what makes pytest,
    xdist and JUnit (<error>) count it as an error, and pytest-html show it
    as one. So is any test whose API calls found no API server: one line, the
    rest of the run goes on. So is a blocked hop (HopBlocked): what it stands on
    fails below it, its own layer was not seen failing; its one line, and the
    record the report counts it by (on the item too: the teardown report copies
    the item's user_properties, and the fold reads the last report's).
    """
    report = yield
    if call.excinfo is None:
        return report
    outage = _outage(item, call.excinfo)
    if outage is not None:
        report.longrepr = f"{apiretry.OUTAGE}: {outage}"
        if call.when == "call":
            report.when = "setup"
    elif call.excinfo.errisinstance((ProbeError, WorkloadError)):
        # The message already says what broke and how to reproduce it; the
        # traceback through the exec client would only bury it.
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
        if call.when == "call":
            report.when = "setup"
    elif call.excinfo.errisinstance(HopBlocked):
        report.longrepr = str(call.excinfo.value)
        if call.when == "call":
            report.when = "setup"
        records.attach(item, call.excinfo.value.record())
        records.attach(report, call.excinfo.value.record())
    elif call.excinfo.errisinstance(HopFailure):
        report.longrepr = str(call.excinfo.value)
    return report


def _outage(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """Why the API server did not answer, when that is what ended the test; a
    connection-level error is confirmed by asking the server before it is blamed."""
    state = state_of(item.config)
    if state is None or excinfo.errisinstance((HopFailure, pytest.skip.Exception)):
        return None
    if excinfo.errisinstance(apiretry.ApiUnreachable):
        return str(excinfo.value)
    if apiretry.unreachable(excinfo.value) is None:
        return None
    state.outage = apiretry.answering(state.configuration)
    return state.outage


def _read_pull_secret(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ClusterError(f"--image-pull-secret {path}: {exc.strerror}") from exc


class Controller:
    """Hooks of the one process that owns the run's cluster side."""

    def __init__(self, state: State, config: pytest.Config, collector: report_plugin.Collector):
        self.state, self.config, self.collector = state, config, collector

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Deploy before xdist starts its workers, so they get the inventory."""
        if self.config.option.collectonly:
            return
        state, options = self.state, self.state.options
        started = time.monotonic()
        self._arm_cleanup()
        self._sweep_lane_locks()
        api = apiretry.client(state.configuration)
        try:
            swept = sweep_stale(api, state.run)
            if swept:
                state.notes.append(f"swept namespaces of dead runs: {', '.join(swept)}")
            for name in swept:  # their lock files, if they ran on this host
                for lock in POLICY_MARKS:
                    remove_lock(name.removeprefix("pw-").split("-")[0], lock)
            secret = _read_pull_secret(options.image_pull_secret)
            debug_image = options.capture_image if options.capture_packets else None
            config = self.config
            selection = (list(config.args), config.invocation_params.dir, config.rootpath,
                         config.option.keyword, config.option.markexpr)
            host_network, no_host = options.host_network, ""
            if host_network:
                host_network, why = needs_host(*selection, diagnose=not options.no_diagnose,
                                               walked=state.walked)
                no_host = "" if host_network else f"{NOT_REQUESTED}{why}"
            policy_lanes, why_no_lanes = needs_policy_lanes(*selection, walked=state.walked)
            services = needs_services(*selection, walked=state.walked)[0]
            objects = with_bindings(
                plan(state.run, state.nodes, options.pod_image, secret, debug_image,
                     exposure=options.exposure, host_network=host_network,
                     pool=options.pool, dual_stack=state.walked.suffixed,
                     ipv6=IPV6 in state.walked.families, watch=options.during is not None,
                     policy_lanes=policy_lanes),
                state.bind_as)
            state.pods_planned = sum(1 for _, o in objects if o["kind"] == "Pod")
            state.heartbeat = Heartbeat(api, state.run)
            state.inventory = bring_up(api, state.run, state.nodes, state.dns_ip,
                                       options.pod_image, secret, options.ready_timeout,
                                       debug_image, objects=objects)
            if no_host:
                state.inventory.skips[HOST] = no_host
                state.notes.append(f"no hostNetwork pods: {no_host.removeprefix(NOT_REQUESTED)}")
            if not policy_lanes:
                state.notes.append(f"no NetworkPolicy lanes: {why_no_lanes}")
            state.inventory.dns_servers = list(state.dns_servers)
            state.inventory.dns_servers_unknown = state.dns_servers_unknown
            if services:  # no probe may race a node's proxy still programming them
                execs = PodExec(state.configuration)
                try:
                    state.notes += [n for n in (await_services(execs, state.inventory),) if n]
                finally:
                    execs.close()
            if options.capture_packets and state.inventory.unusable(DEBUG):
                state.notes.append(f"--capture-packets skipped, the run goes on without it: "
                                   f"{state.inventory.unusable(DEBUG)}")
            for group, why in sorted(state.inventory.skips.items()):
                if group != DEBUG and not why.startswith(NOT_REQUESTED):
                    state.notes.append(f"{group} tests skip: {why}")
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
            reason = apiretry.describe(exc)
            raise pytest.UsageError(
                f"packetwalk: deploying run {state.run.id} failed: {reason}") from None
        if options.during is not None:
            self._watch()

    def _sweep_lane_locks(self) -> None:
        """The lane lock files killed runs left on this host (their own cleanup removes
        a finished run's): once, here, never failing the run."""
        try:
            swept = sweep_stale_locks(POLICY_LANE_LOCK_NAMES)
        except Exception:  # noqa: BLE001 - housekeeping: the run goes on whatever it meets
            return
        if swept:
            self.state.notes.append(f"removed {len(swept)} stale NetworkPolicy lane lock file(s) "
                                    f"of killed runs in {swept[0].parent}")

    def _watch(self) -> None:
        """--during: the watch (watch.py), before xdist starts its workers, so they get
        its result; its files written also when it is interrupted (Ctrl-C then unwinds
        into the usual cleanup)."""
        state, options = self.state, self.state.options
        cells = plan_watch(state.inventory, build_placements(state.nodes))
        if not cells:  # CMD is the change the watch measures: not run blind
            state.watch = WatchResult(options.during, options.settle, options.max_outage,
                                      notes=[("no cell can be watched (their workloads are "
                                             "not usable: see above), so CMD was not run")])
            self._write_watch(state.watch)
            return
        execs = PodExec(state.configuration)
        interrupted = False
        try:
            state.watch = run_watch(cells, execs, options.during, options.settle,
                                    options.max_outage)
        except KeyboardInterrupt as exc:
            state.watch, interrupted = getattr(exc, "watch", None), True
            raise
        finally:
            execs.close()
            if state.watch is not None:
                written = len(state.notes)
                self._write_watch(state.watch)
                if interrupted:  # no terminal summary follows an interrupted sessionstart
                    sys.stderr.write("".join(f"packetwalk: {note}\n"
                                             for note in state.notes[written:]))

    def _write_watch(self, watch: WatchResult) -> None:
        state = self.state
        base = state.options.html or state.options.results_json
        stem = (Path(base).with_suffix("") if base
                else Path("reports") / f"watch-{state.run.id}")
        data = {"run": state.run.id, **watch.to_json(),
                "failures": {test: watch.failures(test) for test in watch.planned}}
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            json_path = stem.with_name(stem.name + ".watch.json")
            html_path = stem.with_name(stem.name + ".watch.html")
            json_path.write_text(json.dumps(data, indent=1) + "\n")
            html_path.write_text(timeline.page(watch, state.run.id))
        except OSError as exc:
            state.notes.append(f"{watch.words()}; its files could not be written: {exc}")
            return
        state.notes += [watch.words(), watch.measured(), *watch.notes,
                        f"watch timeline: {html_path}, every window: {json_path}"]

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
        for lock in POLICY_MARKS:
            remove_lock(state.run.id, lock)
        api = apiretry.client(state.configuration)
        try:
            if state.options.keep:
                mark_kept(api, state.run)
                state.notes.append(
                    f"kept the namespaces of run {state.run.id}; "
                    f"remove with: kubectl delete ns -l packetwalk.io/run={state.run.id}")
                return
            started = time.monotonic()
            if not state.options.wait_cleanup:
                delete_run(api, state.run)
                state.notes.append(f"deleting the namespaces of run {state.run.id}: the cluster "
                                   "removes them, pytest does not wait (--wait-cleanup waits)")
                return
            delete_run(api, state.run, wait=DELETE_WAIT)
            state.notes.append(f"deleted the namespaces of run {state.run.id} "
                               f"in {time.monotonic() - started:.1f}s")
        except Exception as exc:  # noqa: BLE001 - cleanup reports, it must not mask results
            # One line, also when the API server is gone: the next run's sweep finishes it.
            short = isinstance(exc, ApiException) or apiretry.unreachable(exc) is not None
            state.notes.append(f"cleanup of run {state.run.id} incomplete: "
                               f"{apiretry.describe(exc) if short else exc}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """xdist: hand each worker (and any replacement of a crashed one) the run."""
        node.workerinput[RUN_STATE] = self.state.for_worker()

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched) -> None:
        """A worker killed mid-test says nothing about the network: an ERROR, not a FAILURE."""
        report.when = "setup"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        state = self.state
        if state.heartbeat is None:
            return  # nothing was deployed (--collect-only, or setup failed)
        write = terminalreporter.write_line
        terminalreporter.section("packetwalk")
        nodes = ", ".join(f"{n.name} ({n.ip})" for n in state.nodes)
        write(f"run {state.run.id} on {state.target.describe()}: nodes under test {nodes}")
        write(f"pods created: {state.pods_planned}")
        for line in terminal.lines(self.collector.results):
            write(line)
        for note in state.notes:
            write(note)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        """Around every other sessionfinish: once xdist has stopped its workers and the
        results JSON, the HTML and JUnit are written, delete the run (or keep it).
        A watch whose CMD failed (not found, exit non-zero) or was not run fails the run,
        whatever its cells say: the change the gate measured did not happen as asked."""
        try:
            return (yield)
        finally:
            watch = self.state.watch
            if watch is not None and (watch.ran is None or not watch.ran.ok) \
                    and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.cleanup()

    def pytest_unconfigure(self) -> None:
        """Also when sessionstart itself was interrupted (there is no sessionfinish then)."""
        self.cleanup()
