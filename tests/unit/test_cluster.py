"""Cluster selection, and the documented ClusterRole covering what preflight checks."""

from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from packetwalk.aboutlab import LabInfo, write
from packetwalk.cluster import (
    CLUSTER_ACCESS,
    REQUIRED_ACCESS,
    RUN_ACCESS,
    SELF_BIND_ACCESS,
    ClusterError,
    choose_target,
    load_configuration,
)
from packetwalk.selfbind import RUN_NAMESPACE_ROLE
from packetwalk.workloads import MANIFESTS


def lab_info(tmp_path, kubeconfig):
    """The lab-info file `lab up` writes, pointing at `kubeconfig`."""
    path = tmp_path / "lab.json"
    write(LabInfo(str(kubeconfig), "bridge", IPv4Network("10.250.0.0/24"), "pw-outside",
                  "198.51.100.10", 80, ()), path)
    return path


def test_flag_beats_env_beats_default_beats_lab(tmp_path):
    home = tmp_path / "home"
    lab = tmp_path / "lab-kubeconfig"
    info = lab_info(tmp_path, lab)
    assert choose_target("/x", "c", {"KUBECONFIG": "/y"}, home, info).kubeconfig == "/x"
    assert choose_target(None, None, {"KUBECONFIG": "/y"}, home, info).source == "KUBECONFIG"
    lab.write_text("{}")
    assert choose_target(None, None, {}, home, info).source == "the lab"
    assert choose_target(None, None, {}, home, info).kubeconfig == str(lab)
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    assert choose_target(None, None, {}, home, info).source == "~/.kube/config"


def test_no_cluster_at_all_is_one_line(tmp_path):
    with pytest.raises(ClusterError, match="no cluster given"):
        choose_target(None, None, {}, tmp_path, tmp_path / "none")
    # The lab told of a kubeconfig that is gone: not the lab either.
    with pytest.raises(ClusterError, match="no cluster given"):
        choose_target(None, None, {}, tmp_path, lab_info(tmp_path, tmp_path / "gone"))


def test_an_unreadable_lab_info_file_is_named_in_that_line(tmp_path):
    broken = tmp_path / "lab.json"
    broken.write_text("{")
    with pytest.raises(ClusterError, match=rf"no cluster given: .*lab info {broken}: not JSON"):
        choose_target(None, None, {}, tmp_path, broken)


KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
              "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}


def test_unknown_context_names_the_known_ones(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    target = choose_target(str(path), "nope", {}, tmp_path)
    with pytest.raises(ClusterError, match=r"context 'nope' not found .* \(known: a\)"):
        load_configuration(target)
    assert load_configuration(choose_target(str(path), "a", {}, tmp_path)).host == \
        "https://127.0.0.1:1"


def test_missing_kubeconfig_file(tmp_path):
    with pytest.raises(ClusterError, match="does not exist"):
        load_configuration(choose_target(str(tmp_path / "nope"), None, {}, tmp_path))


def rbac_documents(*names):
    return [doc for name in names
            for doc in yaml.safe_load_all(Path(MANIFESTS / name).read_text()) if doc]


def grants(rules):
    return {(group, resource, verb, name) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]
            for name in rule.get("resourceNames") or [""]}


def test_restricted_tier_grants_everything_preflight_checks():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in rbac_documents("rbac-restricted.yaml")}
    cluster = grants(docs["ClusterRole", "packetwalk-cluster"]["rules"])
    kube_system = grants(docs["Role", "packetwalk-kube-system-reader"]["rules"])
    # What the run binds itself to in its namespaces: the aggregated tier roles.
    run = grants(docs["ClusterRole", "packetwalk-run-namespace-restricted"]["rules"])
    assert docs["ClusterRole", "packetwalk-run-namespace"]["aggregationRule"]
    granted = cluster | kube_system | run
    for access in REQUIRED_ACCESS:
        resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
        assert (access.group, resource, access.verb, access.name) in granted, access
    for access in CLUSTER_ACCESS:
        where = kube_system if access.namespace == "kube-system" else cluster
        assert (access.group, access.resource, access.verb, "") in where, access
    for access in RUN_ACCESS:
        resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
        assert (access.group, resource, access.verb, "") in run, access
    for access in SELF_BIND_ACCESS:
        assert (access.group, access.resource, access.verb, access.name) in cluster, access


def test_in_namespace_rights_are_bound_nowhere_cluster_wide():
    docs = rbac_documents("rbac-restricted.yaml", "rbac-host-network.yaml", "rbac-capture.yaml")
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    assert bound == {"packetwalk-cluster"}
    cluster_rules = next(d for d in docs if d["metadata"]["name"] == "packetwalk-cluster")["rules"]
    # Nothing that reaches into other namespaces' objects: only reads, namespace create,
    # and RoleBindings of exactly one ClusterRole.
    for group, resource, verb, name in grants(cluster_rules):
        assert verb in ("get", "list", "watch") or (resource, verb) in {
            ("namespaces", "create"), ("rolebindings", "create"),
            ("clusterroles", "bind")}, (resource, verb)
        assert resource != "clusterroles" or name == RUN_NAMESPACE_ROLE
    tiers = [d for d in docs if d["kind"] == "ClusterRole"
             and (d["metadata"].get("labels") or {}).get("packetwalk.io/aggregate-to-run-namespace")]
    assert {d["metadata"]["name"] for d in tiers} == {
        "packetwalk-run-namespace-restricted", "packetwalk-run-namespace-host-network",
        "packetwalk-run-namespace-capture"}


def test_kube_system_is_only_read():
    role = next(d for d in rbac_documents("rbac-restricted.yaml")
                if d["metadata"]["name"] == "packetwalk-kube-system-reader" and d["kind"] == "Role")
    assert {verb for _, _, verb, _ in grants(role["rules"])} <= {"get", "list", "watch"}
    assert ("networking.k8s.io", "networkpolicies", "list", "") in grants(role["rules"])


def test_the_admission_guard_matches_the_shipped_service_account():
    rbac = rbac_documents("rbac-restricted.yaml")
    account = next(d for d in rbac if d["kind"] == "ServiceAccount")["metadata"]
    policy, binding = rbac_documents("admission-namespace-guard.yaml")
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    username = f"system:serviceaccount:{account['namespace']}:{account['name']}"
    assert [c["expression"] for c in policy["spec"]["matchConditions"]] == [
        f"request.userInfo.username == '{username}'"]
    assert binding["spec"] == {"policyName": policy["metadata"]["name"],
                               "validationActions": ["Deny"]}
    assert RUN_NAMESPACE_ROLE in policy["spec"]["validations"][-1]["expression"]
