"""manifests/rbac-minimal.yaml, proven on a real API server: a service account
without it is stopped at session start with one line, and the same account
with it runs every suite green.
"""

import json
from pathlib import Path

import pytest

from tests.suiterun import ROOT, run_pytest, run_suites

from .conftest import kubectl

RBAC_MINIMAL = ROOT / "manifests/rbac-minimal.yaml"
NS = "pw-labtest-rbac"
ACCOUNT = "runner"
BINDING = "pw-labtest-rbac"


def kubeconfig_for_account(path: Path) -> Path:
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    token = kubectl("-n", NS, "create", "token", ACCOUNT, "--duration=1h").strip()
    cluster = admin["clusters"][0]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "runner",
        "clusters": [cluster],
        "users": [{"name": "runner", "user": {"token": token}}],
        "contexts": [{"name": "runner", "context": {"cluster": cluster["name"], "user": "runner"}}],
    }))
    return path


@pytest.fixture(scope="module")
def account(lab, tmp_path_factory):
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", timeout=90)
    kubectl("delete", "clusterrolebinding", BINDING, "--ignore-not-found")
    kubectl("create", "namespace", NS)
    kubectl("-n", NS, "create", "serviceaccount", ACCOUNT)
    yield kubeconfig_for_account(tmp_path_factory.mktemp("rbac") / "kubeconfig")
    kubectl("delete", "clusterrolebinding", BINDING, "--ignore-not-found")
    kubectl("delete", "-f", str(RBAC_MINIMAL), "--ignore-not-found")
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


def test_without_the_role_the_run_stops_with_one_line(account):
    r = run_pytest("suites/east_west", f"--kubeconfig={account}", timeout=120)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if "RBAC forbids" in line]
    assert len(lines) == 1 and f"system:serviceaccount:{NS}:{ACCOUNT}" in out, out[-3000:]


def test_with_the_minimal_role_every_suite_passes(account, tmp_path):
    kubectl("apply", "-f", str(RBAC_MINIMAL))
    kubectl("create", "clusterrolebinding", BINDING, "--clusterrole=packetwalk-runner",
            f"--serviceaccount={NS}:{ACCOUNT}")
    run = run_suites(tmp_path, "suites", extra=(f"--kubeconfig={account}",))
    assert run.passed and not run.failed and not run.errors, run.output[-3000:]
    # Only what the lab does not offer may skip (LoadBalancer, Ingress), never for permissions.
    assert set(run.skipped) == {"test_ingress", "test_load_balancer"} and all(
        " offered" in why for why in run.skipped.values()), run.skipped
