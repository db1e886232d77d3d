"""A lab whose API server enforces Pod Security restricted by default and refuses
namespaces labelled weaker (`packetwalk lab up --pod-security restricted`), as a
locked-down production cluster: a default east-west run passes, and the host-network
hops (which need a privileged namespace) skip with the refusal. Then the default lab
comes back (`lab up` without the flag brings it up again with the default)."""

import json
import os

import pytest

from packetwalk.lab import cluster, podsecurity, state
from tests.suiterun import run_suites

from .conftest import hand_on, kubectl

HOST_NETWORK_TESTS = ("test_pod_to_node", "test_node_to_pod")
WORKERS = int(os.environ.get("PACKETWALK_LAB_WORKERS", "2"))
NS = "pw-labtest-psa"
# Takes the lab down and brings it up with another setting: runs last.
pytestmark = pytest.mark.switches_lab


@pytest.fixture(scope="module")
def restricted_lab(lab, request):
    try:
        cluster.up(workers=WORKERS, pod_security="restricted", log=lambda m: None)
        yield
    finally:
        # Back to the lab every other test expects, whatever happened above.
        hand_on(request.config)
        assert state.load().pod_security == podsecurity.DEFAULT or not state.load().procs


def test_the_api_server_enforces_restricted_and_refuses_weaker_namespaces(restricted_lab):
    assert state.load().pod_security == "restricted"
    weaker = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NS, "labels": {podsecurity.ENFORCE: "privileged"}}})
    out = kubectl("create", "-f", "-", stdin=weaker, check=False)
    assert kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "name").strip() == "", out
    kubectl("create", "namespace", NS)
    try:
        # No label: the default applies, and a root pod is refused.
        out = kubectl("-n", NS, "run", "root-pod", "--image=registry.k8s.io/pause:3.10.2",
                      "--restart=Never", check=False)
        assert not kubectl("-n", NS, "get", "pods", "-o", "name").strip(), out
        # Relabelling the namespace to a weaker level is refused too.
        kubectl("label", "namespace", NS, f"{podsecurity.ENFORCE}=baseline", "--overwrite",
                check=False)
        labels = json.loads(kubectl("get", "namespace", NS, "-o", "json"))["metadata"].get(
            "labels") or {}
        assert labels.get(podsecurity.ENFORCE) != "baseline", labels
    finally:
        kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")
    # CoreDNS (kube-system, exempt) still answers: the lab came up healthy.
    assert cluster.healthy(state.load())


def test_a_default_east_west_run_passes_and_host_hops_skip_with_the_refusal(restricted_lab, tmp_path):
    run = run_suites(tmp_path, "suites/east_west")
    assert run.passed and not run.failed and not run.errors, run.output[-3000:]
    host = {tid: why for tid, why in run.skipped.items() if tid.startswith(HOST_NETWORK_TESTS)}
    assert host and not any(tid.startswith(HOST_NETWORK_TESTS) for tid in run.passed), run.skipped
    # The API's own words: the floor policy's message.
    assert all(podsecurity.refusal("restricted") in why for why in host.values()), host
    # Nothing else skipped for Pod Security.
    others = {tid: why for tid, why in run.skipped.items() if tid not in host}
    assert not any("Pod Security" in why or "PodSecurity" in why for why in others.values()), others
