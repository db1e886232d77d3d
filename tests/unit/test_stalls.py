"""A cluster that keeps every run pod from starting: one line at session start (stalls.py),
and the bring-up waits that stop on it (workloads.py), with no cluster."""

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubernetes.client.rest import ApiException

from packetwalk import stalls, workloads
from packetwalk.inventory import CORE, Inventory, Pod, Service
from packetwalk.placement import Node
from packetwalk.runs import Run
from packetwalk.stalls import (
    PodFacts,
    Stall,
    account_missing,
    endpoints_stall,
    facts_of,
    pods_stall,
)
from tests.suiterun import ROOT

pytest_plugins = ["pytester"]

RUN = Run("0123ab")
NODES = [Node("pw-worker", "10.250.0.11", "pw-worker"),
         Node("pw-worker2", "10.250.0.12", "pw-worker2")]
ACCOUNT_REFUSAL = ('pods "server-pw-worker" is forbidden: error looking up service account '
                   'pw-0123ab/default: serviceaccount "default" not found')
SANDBOX = ("FailedCreatePodSandBox", ('Failed to create pod sandbox: rpc error: code = Unknown '
                                      'desc = failed to setup network for sandbox "4f2a": '
                                      'plugin type="bridge" failed (add): failed to allocate'))


def pod(name="server-pw-worker", node="pw-worker", **facts) -> PodFacts:
    return PodFacts(name, "pw-0123ab", node, **facts)


def running(name="server-pw-worker", node="pw-worker") -> PodFacts:
    return pod(name, node, ready=True, phase="Running", node_name=node, scheduled=("True", ""))


def unscheduled(name="server-pw-worker", **facts) -> PodFacts:
    return pod(name, phase="Pending", **facts)


def creating(name="server-pw-worker", node="pw-worker", events=(SANDBOX,)) -> PodFacts:
    return pod(name, node, phase="Pending", node_name=node, scheduled=("True", ""),
               events=events)


def test_the_module_imports_no_kubernetes_client():
    check = "import packetwalk.stalls, sys; assert 'kubernetes' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", check], check=False, capture_output=True,
                          text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr


def test_a_healthy_start_is_no_stall():
    assert pods_stall([running("server-a"), running("client-a")], 60) is None
    assert pods_stall([], 60) is None


def test_no_default_service_account_names_the_controller_manager():
    stall = pods_stall([pod(refused=ACCOUNT_REFUSAL)], 30)
    assert str(stall) == (
        "the creation of ServiceAccount pw-0123ab/default did not happen within 30s: "
        "creating pod pw-0123ab/server-pw-worker was refused: " + ACCOUNT_REFUSAL +
        "; likely kube-controller-manager (its serviceaccount controller)")


@pytest.mark.parametrize("message, missing", [
    (ACCOUNT_REFUSAL, True),
    (('pods "x" is forbidden: service account pw-1/default was not found, retry after the '
      'service account is created'), True),
    ("pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\"", False),
])
def test_which_refusals_wait_for_the_account(message, missing):
    assert account_missing(message) is missing


def test_another_refusal_is_no_stall():
    assert pods_stall([pod(refused="admission webhook \"x\" denied the request")], 30) is None


def test_pods_nobody_schedules_name_the_scheduler():
    pods = [unscheduled("server-a"), unscheduled("client-a", scheduled=("False", "")),
            unscheduled("host-a", host_network=True)]
    assert str(pods_stall(pods, 60)) == (
        "the scheduling of the run's pods did not happen within 60s: none of the 2 pods has a "
        "node, and no scheduler said why (no PodScheduled reason, no FailedScheduling event); "
        "likely kube-scheduler")


@pytest.mark.parametrize("facts", [
    {"scheduled": ("False", "Unschedulable")},
    {"events": (("FailedScheduling", "0/3 nodes are available: 1 node(s) had no free ports"),)},
], ids=["unschedulable", "failed-scheduling"])
def test_a_scheduler_that_says_why_is_running(facts):
    """Its own reason reaches each group's error; the scheduler is not blamed."""
    assert pods_stall([unscheduled("server-a", **facts), unscheduled("client-a")], 60) is None


def test_sandboxes_the_cni_cannot_wire_name_the_cni_and_its_node():
    pods = [creating("server-a"), creating("client-a"),
            replace(running("host-a"), host_network=True)]  # needs no CNI: not judged
    stall = pods_stall(pods, 61.4)
    assert str(stall) == (
        "the start of the run's pod sandboxes did not happen within 61s: all 2 pods stay "
        "ContainerCreating on pw-worker: FailedCreatePodSandBox: " + SANDBOX[1] + "; "
        "likely the CNI on pw-worker")


def test_long_evidence_is_cut():
    event = ("FailedCreatePodSandBox", "failed to setup network: " + "x" * 500)
    assert len(pods_stall([creating(events=(event,))], 60).evidence) < 300


def test_sandbox_failures_on_both_nodes_name_both():
    stall = pods_stall([creating("server-a", "pw-worker"), creating("server-b", "pw-worker2")], 60)
    assert stall.likely == "the CNI on pw-worker, pw-worker2"


def test_a_sandbox_failure_without_the_network_names_the_runtime():
    event = ("FailedCreatePodSandBox", "failed to get sandbox image \"pause:3.9\": not found")
    assert pods_stall([creating(events=(event,))], 60).likely == "the container runtime on pw-worker"


def test_a_pod_still_creating_without_events_is_no_stall():
    assert pods_stall([creating(events=())], 60) is None


def test_one_nodes_cni_names_that_node():
    """The cilium lab's cilium-agent-down: the pods planned on pw-worker2 get no
    network, those on pw-worker start. The run's groups span both nodes, so without
    this every test errored with the same line."""
    pods = [running("server-a", "pw-worker"), running("client-a", "pw-worker"),
            creating("server-b", "pw-worker2"), creating("client-b", "pw-worker2"),
            replace(running("host-b", "pw-worker2"), host_network=True)]  # needs no CNI
    assert str(pods_stall(pods, 70.2)) == (
        "the start of the run's pod sandboxes on pw-worker2 did not happen within 70s: all 2 "
        "pods planned there stay ContainerCreating (the other 2 are Ready): "
        "FailedCreatePodSandBox: " + SANDBOX[1] + "; likely the CNI on pw-worker2")


@pytest.mark.parametrize("pods", [
    # One pod on the node started: its CNI works, the others' trouble is their own.
    [running("server-a", "pw-worker"), creating("server-b", "pw-worker2"),
     running("client-b", "pw-worker2")],
    # Another node's pod is still on its way: not that node's CNI alone, yet.
    [creating("server-a", "pw-worker", events=()), creating("server-b", "pw-worker2")],
    # Not the network: the runtime's trouble is each group's own.
    [running("server-a", "pw-worker"), creating("server-b", "pw-worker2", events=(
        ("FailedCreatePodSandBox", "failed to get sandbox image \"pause:3.9\": not found"),))],
], ids=["a-pod-there-started", "another-still-starting", "not-the-network"])
def test_what_is_not_one_nodes_cni(pods):
    assert pods_stall(pods, 60) is None


@pytest.mark.parametrize("pods", [
    [running("server-a"), unscheduled("client-a")],
    [unscheduled("server-a"), creating("server-b", "pw-worker2")],
    [creating("server-a"), pod("client-a", phase="Pending", node_name="pw-worker",
                               scheduled=("True", ""))],
], ids=["some-ready", "mixed-causes", "one-unexplained"])
def test_mixed_is_no_stall(pods):
    """Some pods started, or they are stuck for different or unknown reasons: each
    group's own error says why, as before."""
    assert pods_stall(pods, 60) is None


def test_facts_from_the_pods_the_api_lists():
    planned = workloads.plan(RUN, NODES)
    server = next(o for g, o in planned if g == CORE and o["kind"] == "Pod")
    host = next(o for _, o in planned if o["kind"] == "Pod" and o["spec"].get("hostNetwork"))
    assert facts_of(server, None) == PodFacts("server-pw-worker", "pw-0123ab", "pw-worker")
    assert facts_of(host, None).host_network
    pending = {"spec": {}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    assert facts_of(server, pending, [("FailedScheduling", "x")]) == PodFacts(
        "server-pw-worker", "pw-0123ab", "pw-worker", phase="Pending",
        scheduled=("False", "Unschedulable"), events=(("FailedScheduling", "x"),))
    ready = {"spec": {"nodeName": "pw-worker"}, "status": {
        "phase": "Running", "podIP": "10.244.1.5",
        "conditions": [{"type": "PodScheduled", "status": "True"},
                       {"type": "Ready", "status": "True"}]}}
    assert facts_of(server, ready) == running()


def test_empty_endpoint_slices_name_the_endpointslice_controller():
    stall = endpoints_stall({"servers": (2, 0), "server-pw-worker": (1, 0), "lonely": (0, 0)},
                            0, 30)
    assert str(stall) == (
        "the filling of the run's EndpointSlices did not happen within 30s: none of the 2 "
        "Services with Ready pods lists any of them (0 EndpointSlices in the namespace); "
        "likely the EndpointSlice controller (kube-controller-manager)")


@pytest.mark.parametrize("services", [
    {"servers": (2, 2), "server-pw-worker": (1, 1)},
    {"servers": (2, 1), "server-pw-worker": (1, 0)},
    {"servers": (0, 0)},
    {},
], ids=["healthy", "some-listed", "no-ready-backends", "no-services"])
def test_endpoint_slices_not_a_stall(services):
    assert endpoints_stall(services, 3, 30) is None


def test_the_line_rounds_the_wait():
    assert str(Stall("x", 59.6, "y", "z")) == "x did not happen within 60s: y; likely z"


# --- the waits at bring-up, against fakes of the API ---------------------------------

def refusal(message: str, status: int = 403) -> ApiException:
    exc = ApiException(status=status, reason="Forbidden")
    exc.body = json.dumps({"message": message})
    return exc


def test_a_namespace_without_its_account_stops_the_run(monkeypatch):
    monkeypatch.setattr(workloads, "ACCOUNT_WAIT", 0.5)
    tries = []

    def create(api, obj):
        tries.append(obj["metadata"]["name"])
        if obj["kind"] == "Pod":
            raise refusal(ACCOUNT_REFUSAL)

    monkeypatch.setattr(workloads, "create", create)
    with pytest.raises(workloads.Stalled) as stalled:
        workloads.deploy(None, workloads.plan(RUN, NODES))
    assert str(stalled.value) == (
        "the creation of ServiceAccount pw-0123ab/default did not happen within 0s: creating "
        "pod pw-0123ab/server-pw-worker was refused: " + ACCOUNT_REFUSAL +
        "; likely kube-controller-manager (its serviceaccount controller)")
    assert tries.count("server-pw-worker") >= 2  # tried again before giving up
    assert "client-pw-worker" not in tries  # and stopped at the first pod


def test_an_account_that_comes_late_is_waited_for(monkeypatch):
    refused = {"server-pw-worker": 1}

    def create(api, obj):
        if refused.get(obj["metadata"]["name"]):
            refused[obj["metadata"]["name"]] -= 1
            raise refusal(ACCOUNT_REFUSAL)

    monkeypatch.setattr(workloads, "create", create)
    assert workloads.deploy(None, workloads.plan(RUN, NODES)) == ({}, {})


def test_another_refusal_still_skips_its_group(monkeypatch):
    def create(api, obj):
        if obj["kind"] == "Pod" and obj["metadata"]["name"].startswith("host-"):
            raise refusal("pods \"host\" is forbidden: violates PodSecurity")

    monkeypatch.setattr(workloads, "create", create)
    errors, refused = workloads.deploy(None, workloads.plan(RUN, NODES))
    assert errors == {} and list(refused) == ["host"]


class FakeCore:
    """Lists every planned pod in one state (`as_dict`, what sanitizing gives), and events."""

    def __init__(self, objects: list[tuple[str, dict]], state: dict, events):
        self.pods = [SimpleNamespace(metadata=SimpleNamespace(**o["metadata"]), as_dict=state)
                     for _, o in objects if o["kind"] == "Pod"]
        self.events = [SimpleNamespace(involved_object=SimpleNamespace(name=name), reason=reason,
                                       message=message, last_timestamp="t", event_time=None)
                       for name, reason, message in events]

    def list_namespaced_pod(self, namespace, **_):
        return SimpleNamespace(items=[p for p in self.pods if p.metadata.namespace == namespace],
                               metadata=SimpleNamespace(resource_version="1"))

    def list_namespaced_event(self, namespace, **_):
        return SimpleNamespace(items=self.events)


def await_with(monkeypatch, state: dict, events=(), timeout=30.0):
    objects = workloads.plan(RUN, NODES)
    core = FakeCore(objects, state, events)
    monkeypatch.setattr(workloads, "CoreV1Api", lambda api: core)
    monkeypatch.setattr(workloads, "STALL_AFTER", 0.0)
    api = SimpleNamespace(sanitize_for_serialization=lambda pod: pod.as_dict)
    return workloads.await_pods(api, RUN, objects, timeout, watch=QuietWatch)


class QuietWatch:
    """A watch that brings no event: what the first list showed stays."""

    resource_version = None

    def stream(self, *args, **kwargs):
        return iter(())

    def stop(self):
        pass


def test_pods_nobody_schedules_stop_the_run_at_the_first_check(monkeypatch):
    with pytest.raises(workloads.Stalled, match=r"^the scheduling of the run's pods did not "
                                                 r"happen within 0s: .*; likely kube-scheduler$"):
        await_with(monkeypatch, {"spec": {}, "status": {"phase": "Pending"}})


def test_a_cni_that_fails_everywhere_stops_the_run(monkeypatch):
    objects = workloads.plan(RUN, NODES)
    events = [(o["metadata"]["name"], *SANDBOX) for _, o in objects if o["kind"] == "Pod"]
    state = {"spec": {"nodeName": "pw-worker"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}]}}
    with pytest.raises(workloads.Stalled, match=r"likely the CNI on pw-worker$"):
        await_with(monkeypatch, state, events)


def test_pods_stuck_for_a_reason_not_named_error_as_before(monkeypatch):
    state = {"spec": {"nodeName": "pw-worker"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}]}}
    ready, errors, _ = await_with(monkeypatch, state, timeout=0.5)
    assert ready == {} and "never became Ready" in errors[CORE]


def test_endpoint_slices_that_never_fill_stop_the_run(monkeypatch):
    inventory = Inventory(RUN.id, RUN.namespace, RUN.peer_namespace, NODES, None)
    inventory.pods["server-pw-worker"] = Pod("server-pw-worker", RUN.namespace, "server",
                                             "pw-worker", "10.244.1.5", 8080, "http")
    inventory.services["servers"] = Service("servers", RUN.namespace, "10.96.0.20",
                                            {"http": 80}, {}, ("server-pw-worker",))
    discovery = SimpleNamespace(list_namespaced_endpoint_slice=lambda *a, **k:
                                SimpleNamespace(items=[]))
    monkeypatch.setattr(workloads, "DiscoveryV1Api", lambda api: discovery)
    with pytest.raises(workloads.Stalled, match=r"^the filling of the run's EndpointSlices did "
                                                 r"not happen within 0s: none of the 1 "):
        workloads.await_endpoints(None, inventory, timeout=0.2)


# --- the line a user sees ------------------------------------------------------------

CONFTEST = textwrap.dedent("""
    # A cluster that answers the preflight, then stalls at bring-up (no cluster here).
    from kubernetes.client import Configuration

    import packetwalk.plugin as plugin
    from packetwalk.cluster import Facts, Target
    from packetwalk.placement import Node
    from packetwalk.workloads import Stalled

    NODES = (Node("pw-worker", "10.250.0.11", "pw-worker"),)
    plugin.choose_target = lambda *args: Target(None, None, "test")
    plugin.connect = lambda *args: (Configuration(), Facts("v1.31.0", NODES, None))
    plugin.sweep_stale = lambda *args: []
    plugin.delete_run = lambda *args, **kwargs: None

    def bring_up(*args, **kwargs):
        raise Stalled("the scheduling of the run's pods did not happen within 60s: none of "
                      "the 14 pods has a node; likely kube-scheduler")

    plugin.bring_up = bring_up
""")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_stalled_bring_up_is_one_line_and_the_setup_exit_code(pytester, monkeypatch, xdist):
    """As a bad kubeconfig: one line on stderr, exit 4, no test run; with xdist too (the
    controller deploys before any worker starts, so no worker repeats it)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's packetwalk
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    installed = any(ep.value == "packetwalk.plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "packetwalk.plugin"]
    result = pytester.runpytest_subprocess(*plugin, "--packetwalk", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = ("ERROR: packetwalk: the scheduling of the run's pods did not happen within 60s: "
            "none of the 14 pods has a node; likely kube-scheduler")
    assert [line for line in result.errlines if line.strip()] == [line]
    result.stdout.no_fnmatch_line("*passed*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_the_waits_are_short():
    assert workloads.ACCOUNT_WAIT <= 30 and workloads.STALL_AFTER <= 60
    assert workloads.ENDPOINTS_WAIT <= 30 and stalls.EVIDENCE <= 200
