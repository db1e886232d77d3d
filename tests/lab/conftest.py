"""The lab tests: they bring the lab up (idempotently) and prove it is a real cluster."""

import json
import os
import string
import subprocess
import sys
import time
import warnings

import pytest

from packetwalk.lab import cluster, paths, state
from packetwalk.lab.cni import DEFAULT_CNI
from packetwalk.lab.errors import LabError
from packetwalk.runs import MANAGED_BY
from tests.conftest import NEXT
from tests.suiterun import ROOT

NS = "pw-labtest"

# Ingress deny for every pod of the namespace: the baseline the policy tests start from.
DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""


def pytest_collection_modifyitems(items):
    # The teardown test takes the lab down and up again; it runs last.
    items.sort(key=lambda i: "test_down_leaves_nothing" in i.nodeid)


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab tests need root")
    workers = int(os.environ.get("PACKETWALK_LAB_WORKERS", "2"))
    # A dual-stack lab is brought up (or found up) with PACKETWALK_LAB_IP_FAMILY=dual:
    # `up` refuses to switch a running lab's family.
    family = os.environ.get("PACKETWALK_LAB_IP_FAMILY", "ipv4")
    # Likewise another CNI's lab with PACKETWALK_LAB_CNI (tests/lab/test_dual_stack.py
    # passes its own to the safety checks it runs on its lab).
    cni = os.environ.get("PACKETWALK_LAB_CNI", DEFAULT_CNI)
    try:
        cluster.up(workers=workers, log=lambda m: None, ip_family=family, cni=cni)
        # `up` returns at once on a lab it finds healthy. One fresh CI run found
        # the lab broken seconds later (DNS refused, policy not enforced); the
        # cause was not in its output. Look again after a pause: a lab broken
        # then is brought up once more (up takes an unhealthy lab down first),
        # and what was wrong is printed as a warning, never silently healed.
        time.sleep(5)
        found = cluster.problems(state.load())
        if found:
            warnings.warn("the lab broke right after it came up, brought up again: " + "; ".join(found),
                          stacklevel=1)
            cluster.up(workers=workers, log=lambda m: None, ip_family=family, cni=cni)
    except LabError as e:
        pytest.fail(f"lab up failed: {e}", pytrace=False)
    found = cluster.problems(state.load())
    if found:
        pytest.fail("the lab is up but not healthy: " + "; ".join(found), pytrace=False)
    return paths.KUBECONFIG


# kube-controller-manager's --node-monitor-grace-period default (50 s since 1.32).
NODE_GRACE = 50


def wait_settled(what: str, hold: float, timeout: float, interval: float = 3.0) -> None:
    """Wait until the lab is healthy and has stayed healthy for `hold` seconds."""
    deadline = time.monotonic() + timeout
    since = None
    found: list[str] = []
    while time.monotonic() < deadline:
        found = cluster.problems(state.load())
        now = time.monotonic()
        since = (since or now) if not found else None
        if since is not None and now - since >= hold:
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (healthy for {hold:.0f}s): "
                + ("; ".join(found) or "healthy, not yet for long enough"), pytrace=False)


def kubectl(*args, stdin=None, check=True, timeout=60):
    return cluster.kubectl(*args, stdin=stdin, check=check, timeout=timeout)


def kubectl_json(*args):
    return json.loads(kubectl(*args, "-o", "json"))


def exec_in(pod, *cmd, check=False, timeout=20):
    """Run cmd in a pod; returns (exit code, output)."""
    argv = [str(paths.kubectl()), f"--kubeconfig={paths.KUBECONFIG}", "-n", NS, "exec", pod, "--", *cmd]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} in {pod} exited {r.returncode}: {r.stdout}{r.stderr}")
    return r.returncode, (r.stdout + r.stderr).strip()


def workers():
    items = kubectl_json("get", "nodes")["items"]
    return sorted(i["metadata"]["name"] for i in items
                  if not any(t.get("effect") == "NoSchedule" for t in i["spec"].get("taints", [])))


@pytest.fixture(scope="session")
def selftest(lab):
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=90)
    kubectl("create", "namespace", NS)
    a, b = workers()[:2]
    text = (paths.LAB_MANIFESTS / "selftest.yaml").read_text()
    kubectl("-n", NS, "apply", "-f", "-", stdin=string.Template(text).substitute(NODE_A=a, NODE_B=b))
    kubectl("-n", NS, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s", timeout=100)
    pods = {p["metadata"]["name"]: p for p in kubectl_json("-n", NS, "get", "pods")["items"]}
    yield {"a": pods["server-a"], "b": pods["server-b"], "nodes": (a, b)}
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


# What a healthy lab run of the suites may skip: what was not asked for
# (LoadBalancer, Ingress) and what this kernel lacks (SCTP).
HEALTHY_SKIPS = frozenset({"test_ingress", "test_load_balancer", "test_network_policy[sctp-not-tcp]"})


def suite_namespaces() -> dict[str, dict]:
    """Every namespace a packetwalk run made, by name, with its annotations."""
    return {ns["metadata"]["name"]: ns["metadata"].get("annotations") or {}
            for ns in kubectl_json("get", "namespaces", "-l", f"{MANAGED_BY}=packetwalk")["items"]}


def eventually(check, timeout=20.0, every=1.0):
    """NetworkPolicy and endpoint changes land asynchronously: poll, then return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        ok, detail = check()
        if ok or time.monotonic() > deadline:
            return ok, detail
        time.sleep(every)


def hand_on(config: pytest.Config) -> None:
    """After a test that changed the lab's network or setting: the lab down, then the
    default lab (two workers, bridge, IPv4) for the test that runs next. Not brought up
    when the next test switches the lab too (it brings up its own from a lab that is
    down; each default lab in between cost CI about 35 s). With no next test the default
    lab comes back all the same: `.ci/run` runs the east-west suite on it next."""
    cluster.down(log=lambda m: None)
    following = config.stash.get(NEXT, None)
    if following is None or not following.get_closest_marker("switches_lab"):
        cluster.up(workers=2, log=lambda m: None)


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    """`packetwalk lab ARGS` from this checkout, as a user runs it (the tests that
    switch the lab to another network)."""
    return subprocess.run([sys.executable, "-m", "packetwalk.cli", "lab", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=1800, check=False)
