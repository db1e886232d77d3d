"""Issue 11: nothing facing outside unless asked, refusals skip only their tests,
privilege tiers, and what a run pulls and where it lands."""

import pytest

from fixtures.cluster import require
from packetwalk import cli
from packetwalk.inventory import (
    CORE,
    DEBUG,
    HOST,
    INGRESS,
    LOAD_BALANCER,
    NODE_PORT,
    POLICY,
    POLICY_LANES,
    Inventory,
    WorkloadError,
)
from packetwalk.options import Options, _parse
from packetwalk.placement import Node, schedulable_nodes
from packetwalk.runs import ANNOTATION_HEARTBEAT, MANAGED_BY, RUN_LABEL, Run
from packetwalk.tiers import (
    NOT_REQUESTED_HOST,
    NOT_REQUESTED_INGRESS,
    NOT_REQUESTED_LB,
    NOT_REQUESTED_POLICY,
    Exposure,
    NodePool,
    Toleration,
    check_registry,
    mirrored,
    parse_key_value,
    parse_toleration,
    run_images,
)
from packetwalk.workloads import REFUSALS, not_planned, plan, take_inventory

RUN = Run("0123ab")
NODES = [Node("pw-worker", "10.250.0.11", "pw-worker"),
         Node("pw-worker2", "10.250.0.12", "pw-worker2")]
INTERNAL = (("service.beta.kubernetes.io/aws-load-balancer-internal", "true"),)


def _of(objects, kind):
    return [(g, o) for g, o in objects if o["kind"] == kind]


def test_default_plan_faces_nothing_outside():
    objects = plan(RUN, NODES)
    assert not _of(objects, "Ingress")
    assert not [o for _, o in _of(objects, "Service") if o["spec"].get("type") == "LoadBalancer"]
    assert not_planned(objects) == {LOAD_BALANCER: NOT_REQUESTED_LB,
                                    INGRESS: NOT_REQUESTED_INGRESS}
    assert NOT_REQUESTED_LB == ("not requested: pass --load-balancer (creates a Service of type "
                                "LoadBalancer, which may get a public address)")


def test_asked_for_the_load_balancer_and_ingress_have_them_annotated():
    objects = plan(RUN, NODES, exposure=Exposure(True, True, INTERNAL))
    (lb_group, lb), = [(g, o) for g, o in _of(objects, "Service")
                       if o["spec"].get("type") == "LoadBalancer"]
    (ing_group, ingress), = _of(objects, "Ingress")
    assert (lb_group, ing_group) == (LOAD_BALANCER, INGRESS)
    for obj in (lb, ingress):
        assert obj["metadata"]["annotations"] == dict(INTERNAL)
        assert obj["metadata"]["namespace"] == RUN.namespace
        assert obj["metadata"]["labels"][RUN_LABEL] == RUN.id
    assert "ingressClassName" not in ingress["spec"]  # the cluster's first, at deploy
    assert not_planned(objects) == {}
    only_lb = plan(RUN, NODES, exposure=Exposure(load_balancer=True))
    assert not _of(only_lb, "Ingress") and not_planned(only_lb) == {INGRESS: NOT_REQUESTED_INGRESS}


def test_node_ports_apart_from_the_cluster_ips():
    groups = {o["metadata"]["name"]: (g, o["spec"].get("type", "ClusterIP"))
              for g, o in _of(plan(RUN, NODES), "Service")}
    assert groups["server-pw-worker"] == (CORE, "ClusterIP")
    assert groups["server-pw-worker-nodeport"] == (NODE_PORT, "NodePort")
    assert groups["server-pw-worker-local"] == (NODE_PORT, "NodePort")
    assert all(kind == "ClusterIP" for group, kind in groups.values() if group == CORE)


def _restricted(pod: dict) -> bool:
    spec = pod["spec"]
    sc = spec["securityContext"]
    ok = (sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == 65534
          and sc["seccompProfile"] == {"type": "RuntimeDefault"})
    for c in spec["containers"]:
        csc = c["securityContext"]
        ok &= csc["allowPrivilegeEscalation"] is False and csc["capabilities"] == {"drop": ["ALL"]}
        ok &= all(c["resources"][k].keys() == {"cpu", "memory"} for k in ("requests", "limits"))
    return ok


def test_pods_of_main_and_peer_are_restricted_and_privileged_ones_live_apart():
    objects = plan(RUN, NODES, debug_image="debug:1")
    namespaces = {o["metadata"]["name"]: o for _, o in _of(objects, "Namespace")}
    assert set(namespaces) == {RUN.namespace, RUN.peer_namespace, RUN.host_namespace}
    for name, ns in namespaces.items():
        labels = ns["metadata"]["labels"]
        assert labels[MANAGED_BY] == "packetwalk" and labels[RUN_LABEL] == RUN.id
        assert ANNOTATION_HEARTBEAT in ns["metadata"]["annotations"]
        level = "privileged" if name == RUN.host_namespace else "restricted"
        for mode in ("enforce", "warn", "audit"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == level, (name, mode)
    for group, pod in _of(objects, "Pod"):
        assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
        in_host = pod["metadata"]["namespace"] == RUN.host_namespace
        assert in_host == (group in (HOST, DEBUG)), pod["metadata"]["name"]
        if group != DEBUG:  # hostNetwork netexec needs no root either
            assert _restricted(pod), pod["metadata"]["name"]
        assert not pod["spec"].get("hostNetwork") or in_host


def test_no_host_network_plans_no_privileged_namespace():
    objects = plan(RUN, NODES, host_network=False)
    assert not [o for _, o in objects if o["metadata"].get("namespace") == RUN.host_namespace
                or o["metadata"]["name"] == RUN.host_namespace]
    assert not_planned(objects)[HOST] == NOT_REQUESTED_HOST
    # Capture alone still gets the host namespace, first in its group.
    capture = plan(RUN, NODES, debug_image="d", host_network=False)
    assert (DEBUG, RUN.host_namespace) in [(g, o["metadata"]["name"])
                                          for g, o in _of(capture, "Namespace")]


def test_a_selection_without_network_policy_plans_no_lane():
    with_lanes, without = plan(RUN, NODES), plan(RUN, NODES, policy_lanes=False)
    assert {g for g, _ in with_lanes} >= {POLICY} and POLICY not in {g for g, _ in without}
    assert POLICY not in not_planned(with_lanes)
    assert not_planned(without)[POLICY] == NOT_REQUESTED_POLICY
    # Only the lanes go: the pods and Services every other hop uses stay.
    assert ([o["metadata"]["name"] for g, o in with_lanes if g != POLICY]
            == [o["metadata"]["name"] for _, o in without])
    assert len(_of(with_lanes, "Pod")) - len(_of(without, "Pod")) == 4 * len(POLICY_LANES)


def test_the_pool_reaches_every_pod():
    pool = NodePool((("example.com/pool", "net"),), (parse_toleration("dedicated=net:NoSchedule"),))
    for _, pod in _of(plan(RUN, NODES, debug_image="d", pool=pool, pull_secret=b"{}"), "Pod"):
        assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux",
                                               "example.com/pool": "net"}
        assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Equal",
                                               "value": "net", "effect": "NoSchedule"}]


def test_refusals_skip_and_breakage_errors():
    assert {400, 403, 422} <= REFUSALS and not {404, 409, 429, 500} & REFUSALS
    objects = plan(RUN, NODES)
    why = "the cluster refused Namespace pw-0123ab-host: violates policy"
    inventory = take_inventory(RUN, NODES, None, objects, {}, [], {CORE: "never Ready"},
                               {HOST: why, **not_planned(objects)})
    again = Inventory.from_json(inventory.to_json())
    assert again == inventory and again.host_namespace == RUN.host_namespace
    assert again.namespaces == [RUN.namespace, RUN.peer_namespace, RUN.host_namespace]
    with pytest.raises(pytest.skip.Exception, match="refused Namespace pw-0123ab-host"):
        require(again, (CORE, HOST))
    with pytest.raises(pytest.skip.Exception, match="not requested: pass --load-balancer"):
        require(again, (CORE, LOAD_BALANCER))
    with pytest.raises(WorkloadError, match="never Ready"):
        require(again, (CORE,))
    with pytest.raises(WorkloadError, match="refused"):
        again.pod("host-pw-worker")
    assert take_inventory(RUN, NODES, None, plan(RUN, NODES, host_network=False), {}, [],
                          {}).host_namespace == ""


def test_images_are_rewritten_by_registry_host():
    agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
    assert mirrored(agnhost, "mirror.example/pw") == "mirror.example/pw/e2e-test-images/agnhost:2.66.1"
    assert mirrored(agnhost, None) == agnhost
    assert mirrored("busybox:1", "m.example:5000") == "m.example:5000/library/busybox:1"
    assert mirrored("me/tool@sha256:ab", "m.example") == "m.example/me/tool@sha256:ab"
    assert mirrored("localhost:5000/x:1", "m.example/a/b") == "m.example/a/b/x:1"
    assert [t for t, _ in run_images()] == ["restricted", "host-network", "capture"]
    assert all(i.startswith("mirror.example/pw/") for _, i in run_images(registry="mirror.example/pw"))
    assert check_registry("mirror.example/pw/") == "mirror.example/pw"
    assert check_registry("localhost:5000") == "localhost:5000"
    for bad in ("https://mirror.example", "mirror", "mirror.example/pw:1", "", "a b.example"):
        with pytest.raises(ValueError, match="--image-registry"):
            check_registry(bad)


def test_packetwalk_images_prints_tier_and_name(capsys):
    assert cli.main(["images", "--image-registry", "mirror.example/pw"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "restricted mirror.example/pw/e2e-test-images/agnhost:2.66.1" in lines
    assert all(line.split(" ")[1].startswith("mirror.example/pw/") for line in lines)
    assert cli.main(["images", "--image-registry", "http://x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _getter(**given):
    defaults = {"nodes": None, "ready_timeout": 120, "attempts": 3, "policy_timeout": 20.0,
                "external_target": [],
                "results_json": None, "image_registry": None, "node_selector": [],
                "toleration": [], "service_annotation": [], "no_host_network": False,
                "load_balancer": False, "ingress": False, "expected_source_ips": None}
    values = {**defaults, **given}
    return lambda name: values.get(name)


def test_options_parse_and_travel():
    options = _parse(_getter(image="registry.k8s.io/x/agnhost:1", debug_image="d.example/dbg:1",
                             image_registry="mirror.example/pw",
                             node_selector=["example.com/pool=net"],
                             toleration=["dedicated:NoExecute"], no_host_network=True,
                             load_balancer=True, service_annotation=["a.example/internal=true"]),
                     None)
    assert options.pod_image == "mirror.example/pw/x/agnhost:1"
    assert options.capture_image == "mirror.example/pw/dbg:1"
    assert options.pool == NodePool((("example.com/pool", "net"),),
                                    (Toleration("dedicated", None, "NoExecute"),))
    assert options.exposure == Exposure(True, False, (("a.example/internal", "true"),))
    assert options.host_network is False and options.attempts == 3
    assert _parse(_getter(attempts=5), None).attempts == 5
    assert _parse(_getter(policy_timeout=8.0), None).policy_timeout == 8.0
    assert Options.from_json(options.to_json()) == options
    assert _parse(_getter(), None).exposure == Exposure()


def test_watch_options_parse_with_their_defaults():
    plain = _parse(_getter(), None)
    assert (plain.during, plain.settle, plain.max_outage) == (None, 30.0, 5.0)
    watched = _parse(_getter(during="packetwalk lab heal", settle="10s", max_outage="2s"), None)
    assert (watched.during, watched.settle, watched.max_outage) == ("packetwalk lab heal", 10, 2)
    assert Options.from_json(watched.to_json()) == watched


@pytest.mark.parametrize("given, says", [
    ({"node_selector": ["nolabel"]}, "--node-selector 'nolabel': expected KEY=VALUE"),
    ({"node_selector": ["a=b c"]}, "--node-selector 'a=b c'"),
    ({"service_annotation": ["=x"]}, "--service-annotation '=x'"),
    ({"toleration": ["k=v"]}, "--toleration 'k=v': expected KEY[=VALUE]:EFFECT"),
    ({"toleration": ["k:Sometimes"]}, "--toleration 'k:Sometimes'"),
    ({"image_registry": "ftp://m"}, "--image-registry 'ftp://m'"),
    ({"attempts": 0}, "--attempts 0: must be 1 to 20"),
    ({"attempts": 21}, "--attempts 21: must be 1 to 20"),
    ({"policy_timeout": 0.0}, "--policy-timeout 0: must be more than 0 seconds"),
    ({"max_outage": "2s"}, "--max-outage 2s: only with --during CMD"),
    ({"settle": "5s"}, "--settle 5s: only with --during CMD"),
    ({"during": " "}, "--during ' ': expected a command"),
    ({"during": "true", "settle": "soon"}, "--settle 'soon': expected a duration"),
])
def test_bad_values_are_one_line(given, says):
    with pytest.raises(ValueError) as caught:
        _parse(_getter(**given), None)
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_annotation_values_are_free_label_values_are_not():
    assert parse_key_value("--service-annotation", "a.example/x=any thing: at all",
                           label=False) == ("a.example/x", "any thing: at all")
    assert parse_toleration("k=v:NoSchedule").as_dict()["operator"] == "Equal"


def _node(name, labels=None, taints=()):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", **(labels or {})}},
            "spec": {"taints": [dict(t) for t in taints]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": f"10.0.0.{len(name)}"}]}}


def test_nodes_of_the_pool_tainted_ones_included_when_tolerated():
    tainted = {"key": "dedicated", "value": "net", "effect": "NoSchedule"}
    cluster = [_node("a"), _node("bb", {"pool": "net"}), _node("ccc", {"pool": "net"}, [tainted]),
               _node("win", {"pool": "net", "kubernetes.io/os": "windows"})]
    names = lambda pool: [n.name for n in schedulable_nodes(cluster, pool)]
    assert names(NodePool()) == ["a", "bb"]
    assert names(NodePool((("pool", "net"),))) == ["bb"]
    tolerate = NodePool((("pool", "net"),), (parse_toleration("dedicated=net:NoSchedule"),))
    assert names(tolerate) == ["bb", "ccc"]
    assert names(NodePool((), (parse_toleration("dedicated=other:NoSchedule"),))) == ["a", "bb"]
    assert names(NodePool((), (parse_toleration("dedicated:NoSchedule"),))) == ["a", "bb", "ccc"]
    assert "tolerating dedicated=net:NoSchedule" in tolerate.describe()
    assert tolerate.describe().startswith("labelled kubernetes.io/os=linux, pool=net")
