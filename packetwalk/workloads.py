"""The run's workloads: rendered from manifests/, created once, awaited, inventoried.

Per placement node (at most two): a server and a client pod (namespace
pw-<run>, Pod Security restricted), a hostNetwork pod (pw-<run>-host,
privileged; not with --no-host-network), and one ClusterIP and two NodePort
Services per server. Then a Service over all servers, a headless one, and the
NetworkPolicy pods. The LoadBalancer Service and the Ingress only when asked
(--load-balancer, --ingress). The count depends on the node count and the
options only, never on how many tests run.

Objects come in groups (inventory.py) that fail independently. An object the
cluster refuses at creation (admission, Pod Security, a webhook: a 4xx) skips
the tests of its group with the API's reason; a pod that never becomes Ready
is the cluster breaking, and their tests ERROR. When the control plane keeps
every pod from starting (no ServiceAccount, no scheduler, no sandbox, no
EndpointSlices: stalls.py), the run stops at session start with one line instead.

What was deployed is taken as an Inventory (inventory.py), the plain data
tests read.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import Any

import yaml
from kubernetes.client import (
    ApiClient,
    CoreV1Api,
    DiscoveryV1Api,
    NetworkingV1Api,
    RbacAuthorizationV1Api,
)
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT, ClusterError
from packetwalk.families import family_of
from packetwalk.inventory import (
    CORE,
    DEBUG,
    HOST,
    INGRESS,
    LANE_LABEL,
    LOAD_BALANCER,
    NODE_PORT,
    POLICY,
    POLICY_LANES,
    Inventory,
    Pod,
    Service,
    WorkloadError,
    node_port_service_name,
    pod_name,
    policy_pod_name,
    policy_service_name,
    server_service_name,
)
from packetwalk.listwatch import watch_until
from packetwalk.offers import ingress_classes, ingress_manifest
from packetwalk.placement import Node, used_nodes
from packetwalk.runs import Run, liveness_annotations
from packetwalk.stalls import (
    account_missing,
    endpoints_stall,
    facts_of,
    is_ready,
    pinned_node,
    pods_stall,
)
from packetwalk.tiers import (
    DEFAULT_IMAGE,
    DEFAULT_POOL,
    NO_EXPOSURE,
    NOT_REQUESTED_HOST,
    NOT_REQUESTED_INGRESS,
    NOT_REQUESTED_LB,
    NOT_REQUESTED_POLICY,
    PSA_LEVEL,
    RESTRICTED,
    Exposure,
    NodePool,
)
from packetwalk.tiers import HOST_NETWORK as HOST_TIER
from packetwalk.waiting import WaitTimeout, wait_for

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
HTTP_PORT, UDP_PORT = 8080, 8081
# hostNetwork probe pods listen on the node itself, in 18080-18879: clear of
# kubelet, kube-proxy, etcd and the NodePort range. Each run takes its own pair
# (from its id) so concurrent runs on one cluster rarely compete for a port;
# when they do, the scheduler keeps the later pod Pending and the wait says so.
HOST_PORT_BASE, HOST_PORT_PAIRS = 18080, 400


def host_ports(run: Run) -> tuple[int, int]:
    """(http, udp) ports of the run's hostNetwork pods."""
    http = HOST_PORT_BASE + 2 * (int(run.id, 16) % HOST_PORT_PAIRS)
    return http, http + 1
ALT_HTTP_PORT = 8082  # second port of the policy server
PULL_SECRET = "pw-pull"
# Container states that will not fix themselves within a run; the first four
# say the image cannot be had.
PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                          "ErrImageNeverPull"})
HOPELESS_REASONS = PULL_REASONS | {"CreateContainerConfigError", "CreateContainerError",
                                   "CrashLoopBackOff", "RunContainerError"}


# The waits on the control plane at bring-up (stalls.py): for the namespace's default
# ServiceAccount (made within a second by a healthy controller-manager), for any pod
# to start (then every RECHECK seconds until --ready-timeout), for EndpointSlices.
ACCOUNT_WAIT, STALL_AFTER, RECHECK, ENDPOINTS_WAIT = 30.0, 60.0, 10.0, 30.0


class ImageUnavailable(WorkloadError):
    """Not one of the run's pods could pull its image: bad input, not a verdict."""


class Stalled(ClusterError):
    """The cluster kept every run pod from starting (stalls.py): one line, the run stops."""


def render(manifest: str, **values: object) -> list[dict]:
    text = (MANIFESTS / manifest).read_text()
    return [doc for doc in yaml.safe_load_all(Template(text).substitute(values)) if doc]


# What every run pod answers (its hostname, the client's address, an echo) and all
# it answers: a script socat runs per request, in place of agnhost netexec, whose
# /shell and /dial would serve anyone who reaches a pod or a NodePort.
ANSWER = (MANIFESTS / "answer.sh").read_text()


# The CPU limit of a client pod's probe container during a watch. Its 16 loops fork a
# curl or a bash /dev/udp try every 0.2 s each; under the usual 500m the lab's client
# was throttled in 447 of 527 CFS periods (58 s in all), which delayed tries past
# their 0.5 s wait: single lost probes on cells nothing had broken. Requests stay small.
WATCH_CPU = "2"


def with_answer(pod: dict) -> dict:
    """Fill the pod's PW_ANSWER variables with answer.sh (kept out of the YAML
    template: the script's quotes and dollars are not the template's)."""
    for container in pod["spec"]["containers"]:
        for var in container.get("env") or []:
            if var["name"] == "PW_ANSWER":
                var["value"] = ANSWER
    return pod


def _probe_pod(run: Run, name: str, role: str, node: Node, image: str, *,
               namespace: str | None = None, access: str = "",
               host_network: bool = False) -> dict:
    return with_answer(render("pod-probe.yaml", NAME=name, NAMESPACE=namespace or run.namespace,
                  RUN=run.id, ROLE=role, NODE=node.name, NODE_SLUG=node.slug, ACCESS=access,
                  HOST_NETWORK=str(host_network).lower(),
                  DNS_POLICY="ClusterFirstWithHostNet" if host_network else "ClusterFirst",
                  IMAGE=image, HTTP_PORT=host_ports(run)[0] if host_network else HTTP_PORT,
                  UDP_PORT=host_ports(run)[1] if host_network else UDP_PORT)[0])


def _namespace(run: Run, name: str, role: str, tier: str) -> dict:
    namespace = render("namespace.yaml", NAME=name, RUN=run.id, ROLE=role,
                       LEVEL=PSA_LEVEL[tier])[0]
    namespace["metadata"]["annotations"] = liveness_annotations()
    return namespace


def plan(run: Run, nodes: list[Node], image: str = DEFAULT_IMAGE,
         pull_secret: bytes | None = None, debug_image: str | None = None, *,
         exposure: Exposure = NO_EXPOSURE, host_network: bool = True,
         pool: NodePool = DEFAULT_POOL, dual_stack: bool = False, ipv6: bool = False,
         watch: bool = False, policy_lanes: bool = True) -> list[tuple[str, dict]]:
    """Every object of a run, in creation order, each tagged with its group (pure).
    `dual_stack` (the cluster's pods get both families) makes every Service
    PreferDualStack, so each has a ClusterIP per family (and a headless one answers
    A and AAAA) where the cluster's Service CIDRs allow; a cluster that allows one
    family gives it one, and the other family's Service tests skip saying so.
    Single-stack, Services stay as they were (the cluster's default policy).
    `ipv6` (the cluster's pods get IPv6, dual-stack or IPv6-only) makes the pods'
    servers listen on IPv6 too (_listen_in_both_families); IPv4-only pods keep
    listening on IPv4 alone, as they always did.
    `debug_image` (--capture-packets) adds a privileged hostNetwork debug pod per node;
    `host_network` False plans no hostNetwork pod, `policy_lanes` False no NetworkPolicy
    lane (selection.py reads whether the run needs them); `exposure` says whether a
    LoadBalancer Service and an Ingress are wanted, and their annotations; `pool`
    puts a node selector and tolerations on every pod. `watch` (--during) lets the
    client pods' probe container use WATCH_CPU: it runs the watch's loops."""
    objects: list[tuple[str, dict]] = []
    for name, role in ((run.namespace, "main"), (run.peer_namespace, "peer")):
        objects.append((CORE, _namespace(run, name, role, RESTRICTED)))
        if pull_secret is not None:
            objects.append((CORE, _pull_secret(run, name, pull_secret)))
    placed = used_nodes(nodes)
    for node in placed:
        objects += [
            (CORE, _probe_pod(run, pod_name("server", node), "server", node, image)),
            (CORE, _probe_pod(run, pod_name("client", node), "client", node, image)),
            (CORE, render("service-server.yaml", NAME=server_service_name(node),
                          NAMESPACE=run.namespace, RUN=run.id, NODE_SLUG=node.slug)[0]),
            (NODE_PORT, render("service-server-nodeport.yaml", NAME=node_port_service_name(node),
                               NAMESPACE=run.namespace, RUN=run.id, NODE_SLUG=node.slug)[0]),
            (NODE_PORT, render("service-server-local.yaml",
                               NAME=server_service_name(node, local=True),
                               NAMESPACE=run.namespace, RUN=run.id, NODE_SLUG=node.slug)[0]),
        ]
    for manifest in ("service-servers.yaml", "service-servers-headless.yaml",
                     "service-servers-affinity.yaml"):
        objects.append((CORE, render(manifest, NAMESPACE=run.namespace, RUN=run.id)[0]))
    objects += _exposed(run, exposure)
    # Policy server away from its clients when there are two nodes (cross-node).
    server_node, client_node = placed[-1], placed[0]
    for lane in POLICY_LANES if policy_lanes else ():
        objects += _policy_lane(run, lane, server_node, client_node, image)
    objects += _privileged(run, placed, image, pull_secret, debug_image, host_network)
    for _, obj in objects:
        if obj["kind"] == "Service" and dual_stack:
            obj["spec"]["ipFamilyPolicy"] = "PreferDualStack"
        if obj["kind"] == "Pod" and (dual_stack or ipv6):
            _listen_in_both_families(obj)
        if obj["kind"] == "Pod":
            obj["spec"]["nodeSelector"] = pool.node_selector
            if pool.tolerations:
                obj["spec"]["tolerations"] = [t.as_dict() for t in pool.tolerations]
            if pull_secret is not None:
                obj["spec"]["imagePullSecrets"] = [{"name": PULL_SECRET}]
            if watch and obj["metadata"]["labels"]["packetwalk.io/role"] == "client":
                probe = obj["spec"]["containers"][0]  # its resources are the YAML anchor's dict,
                probe["resources"] = {**probe["resources"],  # shared with the udp container
                                      "limits": {**probe["resources"]["limits"], "cpu": WATCH_CPU}}
    return objects


def _listen_in_both_families(pod: dict) -> None:
    """Pods with IPv6: socat listens on IPv6 and takes IPv4 clients on the same socket
    (ipv6only=0; they show as ::ffff:a.b.c.d, which probes.host_of reads back as the
    IPv4 address), and netexec's UDP side binds each of the pod's IPs (status.podIPs,
    comma-separated). On an IPv6-only cluster the TCP4 listener of old refused every
    probe (readiness included). IPv4-only pods stay as they were: status.podIP."""
    for container in pod["spec"]["containers"]:
        container["command"] = [re.sub(r"TCP4-LISTEN:(\d+),", r"TCP6-LISTEN:\1,ipv6only=0,", part)
                                for part in container["command"]]
        for var in container.get("env") or []:
            if var["name"] == "POD_IP":
                var["valueFrom"] = {"fieldRef": {"fieldPath": "status.podIPs"}}


def _policy_lane(run: Run, lane: str, server_node: Node, client_node: Node,
                 image: str) -> list[tuple[str, dict]]:
    """One lane of NetworkPolicy pods: the server (two containers, ports named http,
    udp and alt), its Service, clients a and b, and a client in the peer namespace.
    Every pod carries the lane's label, which each lane's policies select on."""
    server = with_answer(render("pod-policy-server.yaml", NAME=policy_pod_name("server", lane),
                    NAMESPACE=run.namespace, RUN=run.id, LANE=lane, NODE=server_node.name,
                    NODE_SLUG=server_node.slug, IMAGE=image)[0])
    service = render("service-policy-server.yaml", NAME=policy_service_name(lane),
                     NAMESPACE=run.namespace, RUN=run.id, LANE=lane)[0]
    clients = [_probe_pod(run, policy_pod_name(f"client-{access}", lane), "policy-client",
                            client_node, image, access=access,
                            namespace=run.peer_namespace if access == "peer" else None)
               for access in ("a", "b", "peer")]
    for client in clients:
        client["metadata"]["labels"][LANE_LABEL] = lane
    return [(POLICY, obj) for obj in (server, service, *clients)]


def _exposed(run: Run, exposure: Exposure) -> list[tuple[str, dict]]:
    """The LoadBalancer Service and the Ingress, each only when asked for. The
    Ingress's class is the cluster's first, filled in at deploy (see with_ingress_class)."""
    objects = []
    annotations = dict(exposure.annotations)
    if exposure.load_balancer:
        service = render("service-servers-lb.yaml", NAMESPACE=run.namespace, RUN=run.id)[0]
        objects.append((LOAD_BALANCER, service))
    if exposure.ingress:
        objects.append((INGRESS, ingress_manifest(run.namespace, run.id, None, "servers",
                                                  HTTP_PORT)))
    for _, obj in objects:
        if annotations:
            obj["metadata"]["annotations"] = dict(annotations)
    return objects


def _privileged(run: Run, placed: list[Node], image: str, pull_secret: bytes | None,
                debug_image: str | None, host_network: bool) -> list[tuple[str, dict]]:
    """hostNetwork pods and capture pods, in their own privileged namespace, created
    only when any is planned: a cluster refusing it refuses only them."""
    pods: list[tuple[str, dict]] = []
    if host_network:
        pods += [(HOST, _probe_pod(run, pod_name("host", node), "host", node, image,
                                     namespace=run.host_namespace, host_network=True))
                 for node in placed]
    if debug_image is not None:
        pods += [(DEBUG, render("pod-debug.yaml", NAME=pod_name("debug", node),
                                NAMESPACE=run.host_namespace, RUN=run.id, NODE=node.name,
                                NODE_SLUG=node.slug, IMAGE=debug_image)[0])
                 for node in placed]
    if not pods:
        return []
    first = pods[0][0]  # the namespace fails with the first group that needs it
    head = [(first, _namespace(run, run.host_namespace, "host", HOST_TIER))]
    if pull_secret is not None:
        head.append((first, _pull_secret(run, run.host_namespace, pull_secret)))
    return head + pods


def not_planned(objects: list[tuple[str, dict]]) -> dict[str, str]:
    """{group: why its tests skip} for the optional groups the plan left out."""
    planned = {group for group, _ in objects}
    reasons = {LOAD_BALANCER: NOT_REQUESTED_LB, INGRESS: NOT_REQUESTED_INGRESS,
               HOST: NOT_REQUESTED_HOST, POLICY: NOT_REQUESTED_POLICY}
    return {group: why for group, why in reasons.items() if group not in planned}


def _pull_secret(run: Run, namespace: str, dockerconfigjson: bytes) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": PULL_SECRET, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "packetwalk",
                                    "packetwalk.io/run": run.id}},
            "data": {".dockerconfigjson": base64.b64encode(dockerconfigjson).decode()}}


def policy_objects(run: Run, policy: str, lane: str = POLICY_LANES[0],
                   **values: str) -> list[dict]:
    """A NetworkPolicy manifest (manifests/policy-<name>.yaml) for this run and lane;
    `values` fill what only the running case knows (addresses for ipBlock)."""
    return render(f"policy-{policy}.yaml", NAMESPACE=run.namespace, RUN=run.id, LANE=lane,
                  PEER_NAMESPACE=run.peer_namespace, **values)


def create(api: ApiClient, obj: dict) -> None:
    """Create one object of the kinds packetwalk uses."""
    core, net = CoreV1Api(api), NetworkingV1Api(api)
    namespace = obj["metadata"].get("namespace")
    creators = {
        "Namespace": lambda: core.create_namespace(obj, _request_timeout=API_TIMEOUT),
        "Pod": lambda: core.create_namespaced_pod(namespace, obj, _request_timeout=API_TIMEOUT),
        "Service": lambda: core.create_namespaced_service(namespace, obj,
                                                          _request_timeout=API_TIMEOUT),
        "Secret": lambda: core.create_namespaced_secret(namespace, obj,
                                                        _request_timeout=API_TIMEOUT),
        "NetworkPolicy": lambda: net.create_namespaced_network_policy(
            namespace, obj, _request_timeout=API_TIMEOUT),
        "Ingress": lambda: net.create_namespaced_ingress(namespace, obj,
                                                         _request_timeout=API_TIMEOUT),
        # The run's own RoleBinding in each of its namespaces (selfbind.py).
        "RoleBinding": lambda: RbacAuthorizationV1Api(api).create_namespaced_role_binding(
            namespace, obj, _request_timeout=API_TIMEOUT),
    }
    creators[obj["kind"]]()


# Statuses that are the API saying no to this object (admission, Pod Security,
# a webhook, validation, quota), not the API failing: 404, 408, 409 and 429 are not.
REFUSALS = frozenset(range(400, 500)) - {404, 408, 409, 429}


def describe(obj: dict) -> str:
    """'Service pw-x/servers-lb', 'Namespace pw-x-host'."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta['name']}"


def deploy(api: ApiClient, objects: list[tuple[str, dict]]) -> tuple[dict[str, str],
                                                                     dict[str, str]]:
    """Create everything; returns ({group: error}, {group: refusal}). A refusal (the
    API said no, see REFUSALS) skips the group's tests; another failure errors them.
    A refused namespace refuses every object in it. The main and peer namespaces
    (group CORE) must exist: failing to create them stops the run (ClusterError)."""
    errors: dict[str, str] = {}
    refused: dict[str, str] = {}
    refused_namespaces: dict[str, str] = {}
    for group, obj in objects:
        if group in errors or group in refused:
            continue
        namespace = obj["metadata"].get("namespace")
        if namespace in refused_namespaces:
            refused[group] = refused_namespaces[namespace]
            continue
        name = describe(obj)
        try:
            _create_pod(api, obj) if obj["kind"] == "Pod" else create(api, obj)
        except ApiException as exc:
            message = _api_message(exc)
            if obj["kind"] == "Namespace" and group == CORE:
                raise ClusterError(f"cannot create {name}: {message}") from exc
            if exc.status not in REFUSALS:
                errors[group] = f"creating {name} failed: {message}"
            elif obj["kind"] == "Namespace":
                refused_namespaces[obj["metadata"]["name"]] = \
                    f"the cluster refused {name}: {message}"
            else:
                refused[group] = f"the cluster refused {name}: {message}"
    return errors, refused


def _create_pod(api: ApiClient, obj: dict) -> None:
    """Create a pod; while the API refuses it because its namespace has no default
    ServiceAccount yet, try again for up to ACCOUNT_WAIT, then stop the run (Stalled)."""
    refusal = ""

    def created() -> bool:
        nonlocal refusal
        try:
            create(api, obj)
        except ApiException as exc:
            if not account_missing(message := _api_message(exc)):
                raise
            refusal = message
            return False
        return True

    if created():
        return
    try:
        wait_for(f"ServiceAccount {obj['metadata']['namespace']}/default", created,
                 timeout=ACCOUNT_WAIT, interval=1.0)
    except WaitTimeout:
        raise Stalled(str(pods_stall([facts_of(obj, None, refused=refusal)],
                                     ACCOUNT_WAIT))) from None


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError):
        return f"{exc.status} {exc.reason}"


def _pod_problem(pod: dict) -> tuple[bool, str]:
    """(hopeless, description) of a pod that is not Ready yet."""
    status = pod.get("status") or {}
    parts = [f"phase {status.get('phase', '?')}"]
    hopeless = status.get("phase") in ("Failed", "Succeeded")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting:
            parts.append(f"{cs['name']} waiting: {waiting.get('reason')} "
                         f"({(waiting.get('message') or '')[:160]})")
            hopeless |= waiting.get("reason") in HOPELESS_REASONS
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" and condition.get("message"):
            parts.append(f"{condition['type']}: {condition['message'][:160]}")
    return hopeless, "; ".join(parts)


def _pull_failure(pod: dict) -> str | None:
    """The kubelet's message when a container of the pod waits on its image."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_REASONS:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".strip(": ")
    return None


def _events_by_pod(core: CoreV1Api, namespaces: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{pod name: [(reason, message)], oldest first} of the namespaces' pod events."""
    found: dict[str, list[tuple[str, str]]] = {}
    try:
        events = [e for namespace in namespaces for e in core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=Pod",
            _request_timeout=API_TIMEOUT).items]
    except ApiException:
        return found  # no events, no evidence: nothing is named
    for event in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or "")):
        found.setdefault(event.involved_object.name, []).append(
            (event.reason or "", event.message or ""))
    return found


def _events(core: CoreV1Api, namespace: str, name: str) -> str:
    try:
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}",
            _request_timeout=API_TIMEOUT).items
    except ApiException:
        return "events unavailable"
    recent = sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or ""))[-3:]
    return " | ".join(f"{e.reason}: {e.message}" for e in recent) or "no events"


def await_pods(api: ApiClient, run: Run, objects: list[tuple[str, dict]], timeout: float,
               given_up: frozenset[str] = frozenset(), watch: Callable[[], Any] | None = None
               ) -> tuple[dict[str, dict], dict[str, str], dict[str, str]]:
    """Wait until every planned pod (of a group not `given_up`: not created) is Ready
    or hopeless.

    Returns (ready pods by name as dicts, {group: error}, {pod name: image pull
    failure}). An error names the pod, its node, its state and its last events:
    what was awaited and why it never came. When no pod has started after
    STALL_AFTER seconds (then every RECHECK, and at the deadline) and stalls.py
    names why for all of them, the run stops (Stalled).

    The pods are listed then watched (listwatch.py): the wait ends with the event that
    makes the last pod Ready. `watch` makes the Watch (a fake in unit tests).
    """
    core = CoreV1Api(api)
    wanted = {obj["metadata"]["name"]: (group, obj) for group, obj in objects
              if obj["kind"] == "Pod" and group not in given_up}
    namespaces = sorted({obj["metadata"]["namespace"] for _, obj in wanted.values()})
    seen: dict[str, dict] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    check_at = started + min(STALL_AFTER, timeout)

    def stop_if_stalled(waited: float) -> None:
        events = _events_by_pod(core, namespaces)
        stall = pods_stall([facts_of(obj, seen.get(name), events.get(name, []))
                            for name, (_, obj) in wanted.items()], waited)
        if stall is not None:
            raise Stalled(str(stall))

    def take(pod) -> None:
        seen[pod.metadata.name] = api.sanitize_for_serialization(pod)

    def settled() -> bool:
        nonlocal check_at
        pending = False
        # While some pod waits on its image, every pod is awaited to a verdict, in
        # groups already given up too: whether *every* pod fails to pull decides
        # between bad input (one line, check_image_pulled) and a cluster fault.
        pulling = any(_pull_failure(seen.get(name, {})) for name in wanted)
        for name, (group, obj) in wanted.items():
            if name in seen and is_ready(seen[name]):
                continue
            hopeless, problem = _pod_problem(seen.get(name, {}))
            if hopeless:
                if group not in errors:
                    errors[group] = _never_ready(core, obj, problem)
            elif group not in errors or pulling:
                pending = True
        if pending and time.monotonic() >= check_at:
            stop_if_stalled(time.monotonic() - started)
            check_at = time.monotonic() + RECHECK
        return not pending

    def state() -> str:
        return "; ".join(f"{name}: {_pod_problem(seen.get(name, {}))[1]}"
                         for name in wanted if not is_ready(seen.get(name, {})))

    try:
        watch_until("the run's pods to become Ready", core.list_namespaced_pod, namespaces,
                    take, settled, timeout=timeout, interval=1.0, state=state,
                    watch=watch, label_selector=run.selector)
    except WaitTimeout as exc:
        stop_if_stalled(timeout)
        for name, (group, obj) in wanted.items():
            if group not in errors and not is_ready(seen.get(name, {})):
                errors[group] = _never_ready(core, obj, f"{exc}")
    ready = {name: pod for name, pod in seen.items() if is_ready(pod)}
    pulls = {name: failure for name in wanted
             if (failure := _pull_failure(seen.get(name, {}))) is not None}
    return ready, errors, pulls


def _never_ready(core: CoreV1Api, obj: dict, problem: str) -> str:
    meta = obj["metadata"]
    node = pinned_node(obj)
    return (f"pod {meta['namespace']}/{meta['name']} (node {node}) never became Ready: "
            f"{problem}; events: {_events(core, meta['namespace'], meta['name'])}")


def await_endpoints(api: ApiClient, inventory: Inventory, timeout: float) -> None:
    """Wait until each Service's EndpointSlices list exactly its ready backends,
    so the first probe does not race the endpoints controller. Not an error if
    it never happens for some: their Service tests will then fail and say so; if no
    Service lists any of its ready backends, the run stops (Stalled)."""
    discovery = DiscoveryV1Api(api)
    want = wanted_endpoints(inventory)

    slices: list = []

    def ready_addresses() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        slices[:] = discovery.list_namespaced_endpoint_slice(inventory.namespace,
                                                             _request_timeout=API_TIMEOUT).items
        for item in slices:
            service = (item.metadata.labels or {}).get("kubernetes.io/service-name", "")
            for endpoint in item.endpoints or []:
                if endpoint.conditions is None or endpoint.conditions.ready is not False:
                    found.setdefault(service, set()).update(endpoint.addresses)
        return found

    try:
        wait_for("EndpointSlices to list every ready backend",
                 lambda: all(ready_addresses().get(n, set()) >= ips for n, ips in want.items()),
                 timeout=timeout, interval=0.5)
    except WaitTimeout:
        found = ready_addresses()
        stall = endpoints_stall({n: (len(ips), len(ips & found.get(n, set())))
                                 for n, ips in want.items()}, len(slices), timeout)
        if stall is not None:
            raise Stalled(str(stall)) from None


def wanted_endpoints(inventory: Inventory) -> dict[str, set[str]]:
    """{Service: the backend addresses its EndpointSlices must list} (pure). A dual-stack
    Service has a slice per family, filled apart: its IPv6 tests must not race the IPv6
    slice, so each family of its ClusterIPs counts; a headless one (no ClusterIP to tell
    its families) waits for the primary addresses, as before families."""
    want = {}
    for name, svc in inventory.services.items():
        families = {family_of(ip) for ip in svc.cluster_ips}
        pods = [inventory.pods[b] for b in svc.backends if b in inventory.pods]
        want[name] = ({ip for pod in pods for ip in pod.ips if family_of(ip) in families}
                      if families else {pod.ip for pod in pods})
    return want


def take_inventory(run: Run, nodes: list[Node], dns_ip: str | None,
                   objects: list[tuple[str, dict]], ready: dict[str, dict],
                   services: list[dict], errors: dict[str, str],
                   skips: dict[str, str] | None = None) -> Inventory:
    """Assemble the Inventory from ready pods and created Services (pure)."""
    host = any(o["metadata"].get("namespace") == run.host_namespace for _, o in objects)
    inventory = Inventory(run.id, run.namespace, run.peer_namespace, list(nodes), dns_ip,
                          errors=dict(errors), skips=dict(skips or {}),
                          host_namespace=run.host_namespace if host else "")
    for group, obj in objects:
        if obj["kind"] != "Pod":
            continue
        name = obj["metadata"]["name"]
        inventory.groups[name] = group
        pod = ready.get(name)
        if pod is None:
            continue
        inventory.pods[name] = Pod(
            name=name, namespace=obj["metadata"]["namespace"],
            role=obj["metadata"]["labels"]["packetwalk.io/role"],
            node=pod["spec"]["nodeName"], ip=pod["status"]["podIP"],
            ips=tuple(p["ip"] for p in pod["status"].get("podIPs") or [] if p.get("ip")),
            # Debug pods (--capture-packets) serve nothing: no port.
            http_port=int(next(iter(obj["spec"]["containers"][0].get("ports") or []),
                               {"containerPort": 0})["containerPort"]),
            container=obj["spec"]["containers"][0]["name"])
    pods_by_labels = [(o["metadata"]["name"], o["metadata"]["labels"]) for _, o in objects
                      if o["kind"] == "Pod" and o["metadata"]["namespace"] == run.namespace]
    for svc in services:
        selector = svc["spec"].get("selector") or {}
        backends = tuple(sorted(name for name, labels in pods_by_labels
                                if all(labels.get(k) == v for k, v in selector.items())))
        ports = svc["spec"].get("ports") or []
        inventory.services[svc["metadata"]["name"]] = Service(
            name=svc["metadata"]["name"], namespace=svc["metadata"]["namespace"],
            cluster_ip=svc["spec"].get("clusterIP") or "",
            cluster_ips=tuple(ip for ip in svc["spec"].get("clusterIPs") or [] if ip != "None"),
            ports={p["name"]: p["port"] for p in ports},
            node_ports={p["name"]: p["nodePort"] for p in ports if p.get("nodePort")},
            backends=backends)
    return inventory


def list_services(api: ApiClient, run: Run) -> list[dict]:
    items = CoreV1Api(api).list_namespaced_service(run.namespace, label_selector=run.selector,
                                                   _request_timeout=API_TIMEOUT).items
    return [api.sanitize_for_serialization(s) for s in items]


def check_image_pulled(objects: list[tuple[str, dict]], pulls: dict[str, str], image: str,
                       given_up: frozenset[str] = frozenset()) -> None:
    """Raise ImageUnavailable when every suite pod (not the optional capture pods, nor
    those of groups `given_up`: never created) waits on its image: a wrong --image or
    a missing pull secret is said once, not once per test. Some pods pulling is a
    cluster fault: their tests error instead."""
    suite_pods = {obj["metadata"]["name"] for group, obj in objects
                  if obj["kind"] == "Pod" and group != DEBUG and group not in given_up}
    if suite_pods and suite_pods <= set(pulls):
        raise ImageUnavailable(f"image {image} cannot be pulled on any node under test "
                               f"({pulls[min(suite_pods)]}); see --image and --image-pull-secret")


def with_ingress_class(api: ApiClient, objects: list[tuple[str, dict]]
                       ) -> tuple[list[tuple[str, dict]], dict[str, str]]:
    """The planned Ingress gets the cluster's first IngressClass (by name); without
    one it is not created, and its test skips saying so."""
    if not any(group == INGRESS for group, _ in objects):
        return objects, {}
    classes, why_not = ingress_classes(api)
    if not classes:
        return [(g, o) for g, o in objects if g != INGRESS], {INGRESS: why_not}
    for group, obj in objects:
        if group == INGRESS:
            obj["spec"]["ingressClassName"] = classes[0]
    return objects, {}


def bring_up(api: ApiClient, run: Run, nodes: list[Node], dns_ip: str | None, image: str,
             pull_secret: bytes | None, ready_timeout: float,
             debug_image: str | None = None, objects: list | None = None) -> Inventory:
    """Deploy, wait, inventory: the whole controller-side setup of a run."""
    objects = objects or plan(run, nodes, image, pull_secret, debug_image)  # the caller's plan
    skips = not_planned(objects)
    objects, unoffered = with_ingress_class(api, objects)
    skips.update(unoffered)
    errors, refused = deploy(api, objects)
    skips.update(refused)
    given_up = frozenset(errors) | frozenset(skips)
    ready, not_ready, pulls = await_pods(api, run, objects, ready_timeout, given_up)
    check_image_pulled(objects, pulls, image, given_up)
    errors.update({g: e for g, e in not_ready.items() if g not in errors})
    inventory = take_inventory(run, nodes, dns_ip, objects, ready, list_services(api, run),
                               errors, skips)
    await_endpoints(api, inventory, timeout=ENDPOINTS_WAIT)
    return inventory
