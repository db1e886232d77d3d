"""The one door from the lab to the engine: what the lab writes, what the engine reads."""

import json
from ipaddress import IPv4Network

import pytest

from packetwalk import aboutlab
from packetwalk.aboutlab import LabInfo, LabInfoError, LabNode
from packetwalk.lab import info, paths, topology

LAB = LabInfo(kubeconfig="/k", cni="bridge", underlay=IPv4Network("10.250.0.0/24"),
              outside_netns="pw-outside", outside_host="198.51.100.10", outside_port=80,
              nodes=(LabNode("pw-worker", "pw-worker", "/n/pw-worker"),))


def test_round_trip_through_the_file(tmp_path):
    path = tmp_path / "run" / "lab.json"
    aboutlab.write(LAB, path)
    assert aboutlab.load(path) == aboutlab.read(path) == LAB
    assert path.stat().st_mode & 0o777 == 0o644  # suites may run as any user
    assert LAB.node("pw-worker").cni_conf_dir == "/n/pw-worker" and LAB.node("nope") is None


def test_no_file_means_not_the_lab(tmp_path):
    assert aboutlab.load(tmp_path / "lab.json") is None
    assert aboutlab.read(tmp_path / "lab.json") is None


@pytest.mark.parametrize(("text", "reason"), [
    ("{", "not JSON"),
    ("[]", "not a JSON object"),
    ('{"format": 99}', "format 99, expected 1"),
    ('{"format": 1, "kubeconfig": "/k"}', "missing 'cni'"),
])
def test_an_unusable_file_is_absent_with_its_reason(tmp_path, text, reason):
    path = tmp_path / "lab.json"
    path.write_text(text)
    assert aboutlab.read(path) is None
    with pytest.raises(LabInfoError, match=f"lab info {path}: {reason}"):
        aboutlab.load(path)


def test_a_bad_value_is_named():
    data = json.loads(LAB.to_json())
    data["underlay"] = "10.250.0.0/33"
    with pytest.raises(LabInfoError, match="bad value"):
        aboutlab.parse(json.dumps(data))


@pytest.mark.parametrize("egress_nat", [{"IPv6": False}, {"ipv4": True, "ip6": False}])
def test_an_egress_nat_key_that_is_no_family_is_refused_in_one_line(tmp_path, egress_nat):
    """A typo would otherwise be read, and its family quietly taken as NATed."""
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(json.loads(LAB.to_json()) | {"egress_nat": egress_nat}))
    with pytest.raises(LabInfoError) as refused:
        aboutlab.load(path)
    typo = next(k for k in egress_nat if k != "ipv4")
    assert str(refused.value) == (f"lab info {path}: egress_nat {egress_nat!r}: "
                                  f"unknown family {typo!r} (expected ipv4 or ipv6)")
    assert aboutlab.read(path) is None  # unusable: not the lab, as any bad file


def test_what_the_lab_tells_is_its_plan():
    told = aboutlab.parse(info.describe(topology.nodes(2), "bridge").to_json())
    assert told.kubeconfig == str(paths.KUBECONFIG) and told.cni == "bridge"
    assert (told.outside_netns, told.outside_host, told.outside_port) == (
        topology.OUTSIDE_NS, str(topology.OUTSIDE_HOST_IP), topology.OUTSIDE_HTTP_PORT)
    assert told.underlay == topology.UNDERLAY
    assert [n.name for n in told.nodes] == ["pw-control-plane", "pw-worker", "pw-worker2"]
    assert told.node("pw-worker").cni_conf_dir == str(paths.node_dir("pw-worker") /
                                                      "root/etc/cni/net.d")


def test_the_file_lives_in_the_labs_run_dir_which_down_removes():
    assert paths.LAB_INFO == aboutlab.LAB_INFO and paths.LAB_INFO.parent == paths.RUN_DIR
    assert paths.STATE_ROOT == aboutlab.LAB_ROOT
