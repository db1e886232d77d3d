"""Issue 11 on the lab: an east-west run faces nothing outside the cluster, its pods
are Pod Security restricted, a refusal skips only the tests that need the refused
object, and a run pulls only from --image-registry when given one.

Each test runs the suites in a subprocess, as a user would, while a watcher polls
what the run put in the cluster.
"""

import json
import subprocess
import sys
import threading
import time

import pytest

from packetwalk.lab import cluster
from packetwalk.runs import MANAGED_BY
from packetwalk.tiers import DEFAULT_IMAGE, mirrored
from tests.suiterun import ROOT, run_suites

from .conftest import eventually, kubectl

MANAGED = f"{MANAGED_BY}=packetwalk"
MIRROR = "mirror.example/pw"  # never resolved: the image is tagged on the nodes, pulled by none


class Watch:
    """Polls the run's Services, Ingresses, namespaces and pods every 0.5 s in the
    background and keeps everything it saw, by name."""

    def __init__(self):
        self.services: dict[str, dict] = {}
        self.ingresses: dict[str, dict] = {}
        self.namespaces: dict[str, dict] = {}
        self.pods: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _get(self, *what: str) -> list[dict]:
        try:
            return json.loads(kubectl("get", *what, "-l", MANAGED, "-o", "json",
                                      timeout=10))["items"]
        except Exception:  # noqa: BLE001 - a missed poll is retried half a second later
            return []

    def _poll(self):
        while not self._stop.wait(0.5):
            for store, what in ((self.services, ("svc", "-A")),
                                (self.ingresses, ("ingress", "-A")),
                                (self.namespaces, ("namespaces",)),
                                (self.pods, ("pods", "-A"))):
                for item in self._get(*what):
                    meta = item["metadata"]
                    store[f"{meta.get('namespace', '')}/{meta['name']}"] = item


@pytest.fixture
def clean_slate(lab):
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)
    yield
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)


def _restricted(pod: dict) -> list[str]:
    """What keeps a pod (as the API server stored it) from Pod Security restricted."""
    spec, problems = pod["spec"], []
    psc = spec.get("securityContext") or {}
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append("host namespaces")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile")
    for c in spec["containers"]:
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            problems.append(f"{c['name']}: runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) in (None, 0):
            problems.append(f"{c['name']}: runAsUser")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"] or sc.get("privileged"):
            problems.append(f"{c['name']}: capabilities")
        resources = c.get("resources") or {}
        if not all(k in resources.get(kind, {}) for kind in ("requests", "limits")
                   for k in ("cpu", "memory")):
            problems.append(f"{c['name']}: requests/limits")
    if spec.get("nodeSelector", {}).get("kubernetes.io/os") != "linux":
        problems.append("nodeSelector kubernetes.io/os")
    return problems


def test_east_west_faces_nothing_outside_and_its_pods_are_restricted(clean_slate, tmp_path):
    with Watch() as watch:
        run = run_suites(tmp_path, "suites/east_west")
    assert not run.failed and not run.errors, run.output[-4000:]
    assert any(i.startswith("test_pod_ip[") for i in run.passed), run.output[-3000:]
    assert watch.services, "the watch never saw the run's Services"
    assert not [name for name, s in watch.services.items()
                if s["spec"].get("type") == "LoadBalancer"], "an east-west run made a LoadBalancer"
    assert not watch.ingresses, f"an east-west run made Ingresses: {sorted(watch.ingresses)}"
    # (b) restricted: the namespaces say so (so the API server enforced it on every
    # pod it admitted), and each pod as stored complies.
    levels = {name.strip("/"): ns["metadata"]["labels"] for name, ns in watch.namespaces.items()}
    roles = {labels["packetwalk.io/role"]: labels for labels in levels.values()}
    assert set(roles) == {"main", "peer", "host"}, levels
    for role, labels in roles.items():
        want = "privileged" if role == "host" else "restricted"
        for mode in ("enforce", "warn", "audit"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == want, (role, mode)
    restricted = {name for name, labels in levels.items() if labels["packetwalk.io/role"] != "host"}
    pods = {name: pod for name, pod in watch.pods.items() if name.split("/")[0] in restricted}
    assert len(pods) >= 8, sorted(watch.pods)
    assert {name: p for name, pod in pods.items() if (p := _restricted(pod))} == {}
    hosts = [pod for name, pod in watch.pods.items() if name.split("/")[0] not in restricted]
    assert hosts and all(pod["spec"]["hostNetwork"] for pod in hosts)


REFUSE = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: pw-labtest-refuse}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services, pods]}
  validations:
    - expression: "request.resource.resource != 'services' || !has(object.spec.type) || object.spec.type != 'NodePort'"
      message: "lab policy: no NodePort Services"
    - expression: "request.resource.resource != 'pods' || !has(object.spec.hostNetwork) || !object.spec.hostNetwork"
      message: "lab policy: no hostNetwork pods"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: pw-labtest-refuse}
spec:
  policyName: pw-labtest-refuse
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {app.kubernetes.io/managed-by: packetwalk}
"""


@pytest.fixture
def refusing(clean_slate):
    """An admission policy refusing NodePort Services and hostNetwork pods in
    packetwalk's namespaces, active before the run (checked with a dry run)."""
    kubectl("apply", "-f", "-", stdin=REFUSE)
    probe = "pw-labtest-refuse"
    kubectl("create", "namespace", probe)
    kubectl("label", "namespace", probe, MANAGED)
    try:
        def active():
            r = subprocess.run([*cluster_kubectl(), "-n", probe, "create", "service", "nodeport",
                                "x", "--tcp=80", "--dry-run=server"],
                               capture_output=True, text=True, check=False, timeout=20)
            return "lab policy" in r.stderr, r.stderr
        ok, said = eventually(active, timeout=30)
        assert ok, f"the admission policy never took effect: {said}"
    finally:
        kubectl("delete", "namespace", probe, "--wait=false")
    yield
    kubectl("delete", "-f", "-", "--ignore-not-found", stdin=REFUSE)


def cluster_kubectl() -> list[str]:
    from packetwalk.lab import paths
    return [str(paths.kubectl()), f"--kubeconfig={paths.KUBECONFIG}"]


def test_a_refused_object_skips_only_the_tests_that_need_it(refusing, tmp_path):
    run = run_suites(tmp_path, "suites/east_west", extra=(
        "-k", "test_pod_ip or test_cluster_ip or node_port or host-network", "--no-diagnose"))
    assert not run.failed and not run.errors, run.output[-4000:]
    assert {i for i in run.passed if i.startswith(("test_pod_ip[", "test_cluster_ip["))}
    node_port = {i: why for i, why in run.skipped.items() if i.startswith("test_node_port")}
    host = {i: why for i, why in run.skipped.items()
            if i.startswith(("test_pod_to_node", "test_node_to_pod"))}
    assert node_port and host, run.skipped
    for why in node_port.values():
        if "needs 2 schedulable nodes" not in why:
            assert "the cluster refused Service" in why and "no NodePort Services" in why, why
    for why in host.values():
        if "needs 2 schedulable nodes" not in why:
            assert "the cluster refused Pod" in why and "no hostNetwork pods" in why, why


def test_a_run_from_a_mirror_pulls_only_rewritten_names(clean_slate, tmp_path):
    listed = subprocess.run([sys.executable, "-m", "packetwalk.cli", "images",
                             "--image-registry", MIRROR], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60).stdout.splitlines()
    assert listed and all(line.split(" ", 1)[1].startswith(f"{MIRROR}/") for line in listed)
    mirror_image = mirrored(DEFAULT_IMAGE, MIRROR)
    assert f"restricted {mirror_image}" in listed
    cluster.import_image(DEFAULT_IMAGE, mirror_image)
    started = time.monotonic()
    with Watch() as watch:
        run = run_suites(tmp_path, "suites/east_west", extra=(
            "--image-registry", MIRROR, "-k", "test_pod_ip", "--no-diagnose"))
    assert not run.failed and not run.errors, run.output[-4000:]
    assert any(i.startswith("test_pod_ip[") for i in run.passed), run.output[-3000:]
    images = {c["image"] for pod in watch.pods.values() for c in pod["spec"]["containers"]}
    assert images == {mirror_image}, (images, time.monotonic() - started)
