"""The run's objects: labels everywhere, pod count bounded by nodes, inventory JSON."""

import pytest

from packetwalk.inventory import (
    CORE,
    HOST,
    POLICY,
    POLICY_LANES,
    Inventory,
    Pod,
    Service,
    WorkloadError,
)
from packetwalk.placement import Node
from packetwalk.runs import Run
from packetwalk.workloads import (
    WATCH_CPU,
    ImageUnavailable,
    _pull_failure,
    check_image_pulled,
    host_ports,
    plan,
    policy_objects,
    take_inventory,
)

RUN = Run("0123ab")
NODES = [Node("pw-worker", "10.250.0.11", "pw-worker"),
         Node("pw-worker2", "10.250.0.12", "pw-worker2")]


def test_every_object_carries_both_labels():
    objects = [obj for _, obj in plan(RUN, NODES, pull_secret=b"{}")]
    objects += policy_objects(RUN, "deny-ingress")
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "packetwalk", obj["metadata"]["name"]
        assert labels["packetwalk.io/run"] == "0123ab"  # a string, even if it looks numeric


def test_pod_count_depends_on_nodes_only():
    pods = [o for _, o in plan(RUN, NODES) if o["kind"] == "Pod"]
    # Per node: server, client, host. Per policy lane: a server and three clients.
    assert len(pods) == 3 * 2 + 4 * len(POLICY_LANES)
    pods_big = [o for _, o in plan(RUN, NODES + [Node("z", "10.0.0.9", "z")])
                if o["kind"] == "Pod"]
    assert len(pods_big) == len(pods)
    single = [o for _, o in plan(RUN, NODES[:1]) if o["kind"] == "Pod"]
    assert len(single) == 3 + 4 * len(POLICY_LANES)


def test_pods_are_pinned_and_host_pods_use_free_ports():
    objects = {o["metadata"]["name"]: (g, o) for g, o in plan(RUN, NODES)}
    group, host = objects["host-pw-worker2"]
    assert group == HOST and host["spec"]["hostNetwork"] is True
    assert host["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    http, udp = host_ports(RUN)
    assert [p["containerPort"] for c in host["spec"]["containers"] for p in c["ports"]] == [http, udp]
    assert 18080 <= http < 18880 and http % 2 == 0
    assert host_ports(Run("0123ac")) != (http, udp)
    terms = host["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchFields"][0]["values"] == ["pw-worker2"]
    assert objects["policy-server"][0] == POLICY and objects["server-pw-worker"][0] == CORE
    # Only the host namespace is privileged (issue 11: tiers); main and peer are restricted.
    assert objects[RUN.host_namespace][1]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "privileged"
    assert host["metadata"]["namespace"] == RUN.host_namespace
    assert objects[RUN.namespace][1]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"


def test_inventory_roundtrip_and_group_errors():
    objects = plan(RUN, NODES)
    ready = {"server-pw-worker": {"spec": {"nodeName": "pw-worker"},
                                  "status": {"podIP": "10.244.1.2"}}}
    services = [{"metadata": {"name": "servers", "namespace": RUN.namespace},
                 "spec": {"clusterIP": "10.96.0.5", "selector": {"packetwalk.io/role": "server"},
                          "ports": [{"name": "http", "port": 8080, "nodePort": 30001}]}}]
    inventory = take_inventory(RUN, NODES, "10.96.0.10", objects, ready, services,
                               {HOST: "pod host-pw-worker never became Ready"})
    again = Inventory.from_json(inventory.to_json())
    assert again == inventory
    assert again.pod("server-pw-worker") == Pod("server-pw-worker", RUN.namespace, "server",
                                                 "pw-worker", "10.244.1.2", 8080, "http")
    assert again.service("servers") == Service("servers", RUN.namespace, "10.96.0.5",
                                               {"http": 8080}, {"http": 30001},
                                               ("server-pw-worker", "server-pw-worker2"))
    try:
        again.pod("host-pw-worker")
    except WorkloadError as exc:
        assert "never became Ready" in str(exc)
    else:
        raise AssertionError("a pod of a failed group must raise")


def _waiting(reason: str, message: str = "") -> dict:
    return {"status": {"phase": "Pending", "containerStatuses": [
        {"name": "netexec", "state": {"waiting": {"reason": reason, "message": message}}}]}}


def test_an_image_no_suite_pod_could_pull_is_bad_input_once():
    assert _pull_failure(_waiting("ErrImagePull", "not found")) == "ErrImagePull: not found"
    assert _pull_failure(_waiting("ContainerCreating")) is None
    assert _pull_failure({}) is None
    objects = plan(RUN, NODES, debug_image="debug:1")
    suite = [obj["metadata"]["name"] for group, obj in objects
             if obj["kind"] == "Pod" and group != "debug"]
    with pytest.raises(ImageUnavailable, match=r"image agnhost:x cannot be pulled .*not found"):
        check_image_pulled(objects, {name: "ErrImagePull: not found" for name in suite}, "agnhost:x")
    # One node's pods pulling is the cluster's fault, not bad input: their tests error.
    check_image_pulled(objects, {name: "ErrImagePull: x" for name in suite[1:]}, "agnhost:x")
    check_image_pulled(objects, {}, "agnhost:x")


def test_a_watch_lets_only_the_clients_probe_container_use_more_cpu():
    def limits(watch):
        return {(o["metadata"]["name"], c["name"]): c["resources"]["limits"]["cpu"]
                for _, o in plan(RUN, NODES, watch=watch) if o["kind"] == "Pod"
                for c in o["spec"]["containers"]}

    usual, watched = limits(False), limits(True)
    changed = {key for key in usual if usual[key] != watched[key]}
    assert changed == {("client-pw-worker", "http"), ("client-pw-worker2", "http")}
    assert {watched[key] for key in changed} == {WATCH_CPU} and set(usual.values()) == {"500m"}


def test_a_dual_stack_run_listens_in_both_families_and_a_single_stack_one_as_before():
    def listening(dual):
        return [(c["command"], [v for v in c.get("env") or [] if v["name"] == "POD_IP"])
                for _, o in plan(RUN, NODES, dual_stack=dual) if o["kind"] == "Pod"
                for c in o["spec"]["containers"]]

    single, dual = listening(False), listening(True)
    assert any("TCP4-LISTEN:8080,reuseaddr" in " ".join(cmd) for cmd, _ in single)
    assert not any("TCP6" in " ".join(cmd) for cmd, _ in single)
    assert not any("TCP4-LISTEN" in " ".join(cmd) for cmd, _ in dual)
    assert any("TCP6-LISTEN:8080,ipv6only=0,reuseaddr" in " ".join(cmd) for cmd, _ in dual)
    paths = {v["valueFrom"]["fieldRef"]["fieldPath"] for _, env in single for v in env}
    assert paths == {"status.podIP"}
    assert {v["valueFrom"]["fieldRef"]["fieldPath"] for _, env in dual for v in env} == {
        "status.podIPs"}
