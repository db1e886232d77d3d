"""Cluster selection, and the documented ClusterRole covering what preflight checks."""

from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from packetwalk.aboutlab import LabInfo, write
from packetwalk.cluster import REQUIRED_ACCESS, ClusterError, choose_target, load_configuration
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


def test_minimal_clusterrole_grants_everything_preflight_checks():
    role = yaml.safe_load(Path(MANIFESTS / "rbac-minimal.yaml").read_text())
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    for access in REQUIRED_ACCESS:
        resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
        assert (access.group, resource, access.verb) in granted, access
