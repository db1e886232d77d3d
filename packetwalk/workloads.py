"""The run's workloads: rendered from manifests/, created once, awaited, inventoried.

Per placement node (at most two): a server, a client and a hostNetwork pod,
plus one Service per server. Then a Service over all servers, a headless one,
and the NetworkPolicy pods. The count depends on the node count only, never
on how many tests run.

What was deployed is taken as an Inventory (inventory.py), the plain data
tests read.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from string import Template

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
from packetwalk.inventory import (
    CORE,
    DEBUG,
    HOST,
    POLICY,
    Inventory,
    Pod,
    Service,
    WorkloadError,
    pod_name,
    server_service_name,
)
from packetwalk.placement import Node, used_nodes
from packetwalk.runs import Run, liveness_annotations
from packetwalk.waiting import WaitTimeout, wait_for

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
DEFAULT_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
HTTP_PORT, UDP_PORT = 8080, 8081
# hostNetwork netexec listens on the node itself, in 18080-18879: clear of
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


class ImageUnavailable(WorkloadError):
    """Not one of the run's pods could pull its image: bad input, not a verdict."""


def render(manifest: str, **values: object) -> list[dict]:
    text = (MANIFESTS / manifest).read_text()
    return [doc for doc in yaml.safe_load_all(Template(text).substitute(values)) if doc]


def _netexec_pod(run: Run, name: str, role: str, node: Node, image: str, *,
                 namespace: str | None = None, access: str = "",
                 host_network: bool = False) -> dict:
    return render("pod-netexec.yaml", NAME=name, NAMESPACE=namespace or run.namespace,
                  RUN=run.id, ROLE=role, NODE=node.name, NODE_SLUG=node.slug, ACCESS=access,
                  HOST_NETWORK=str(host_network).lower(),
                  DNS_POLICY="ClusterFirstWithHostNet" if host_network else "ClusterFirst",
                  IMAGE=image, HTTP_PORT=host_ports(run)[0] if host_network else HTTP_PORT,
                  UDP_PORT=host_ports(run)[1] if host_network else UDP_PORT)[0]


def plan(run: Run, nodes: list[Node], image: str = DEFAULT_IMAGE,
         pull_secret: bytes | None = None,
         debug_image: str | None = None) -> list[tuple[str, dict]]:
    """Every object of a run, in creation order, each tagged with its group (pure).
    `debug_image` (--capture-packets) adds a privileged hostNetwork debug pod per node."""
    objects: list[tuple[str, dict]] = []
    for name, role in ((run.namespace, "main"), (run.peer_namespace, "peer")):
        namespace = render("namespace.yaml", NAME=name, RUN=run.id, ROLE=role)[0]
        namespace["metadata"]["annotations"] = liveness_annotations()
        objects.append((CORE, namespace))
        if pull_secret is not None:
            objects.append((CORE, _pull_secret(run, name, pull_secret)))
    placed = used_nodes(nodes)
    for node in placed:
        objects += [
            (CORE, _netexec_pod(run, pod_name("server", node), "server", node, image)),
            (CORE, _netexec_pod(run, pod_name("client", node), "client", node, image)),
            (HOST, _netexec_pod(run, pod_name("host", node), "host", node, image,
                                host_network=True)),
            (CORE, render("service-server.yaml", NAME=server_service_name(node),
                          NAMESPACE=run.namespace, RUN=run.id, NODE_SLUG=node.slug)[0]),
            (CORE, render("service-server-local.yaml", NAME=server_service_name(node, local=True),
                          NAMESPACE=run.namespace, RUN=run.id, NODE_SLUG=node.slug)[0]),
        ]
    for manifest in ("service-servers.yaml", "service-servers-headless.yaml",
                     "service-servers-lb.yaml", "service-servers-affinity.yaml"):
        objects.append((CORE, render(manifest, NAMESPACE=run.namespace, RUN=run.id)[0]))
    # Policy server away from its clients when there are two nodes (cross-node).
    server_node, client_node = placed[-1], placed[0]
    objects += [
        (POLICY, render("pod-policy-server.yaml", NAMESPACE=run.namespace, RUN=run.id,
                        NODE=server_node.name, NODE_SLUG=server_node.slug, IMAGE=image)[0]),
        (POLICY, render("service-policy-server.yaml", NAMESPACE=run.namespace,
                        RUN=run.id)[0]),
        (POLICY, _netexec_pod(run, "policy-client-a", "policy-client", client_node, image,
                              access="a")),
        (POLICY, _netexec_pod(run, "policy-client-b", "policy-client", client_node, image,
                              access="b")),
        (POLICY, _netexec_pod(run, "policy-client-peer", "policy-client", client_node, image,
                              namespace=run.peer_namespace, access="peer")),
    ]
    if debug_image is not None:
        objects += [(DEBUG, render("pod-debug.yaml", NAME=pod_name("debug", node),
                                   NAMESPACE=run.namespace, RUN=run.id, NODE=node.name,
                                   NODE_SLUG=node.slug, IMAGE=debug_image)[0])
                    for node in placed]
    if pull_secret is not None:
        for _, obj in objects:
            if obj["kind"] == "Pod":
                obj["spec"]["imagePullSecrets"] = [{"name": PULL_SECRET}]
    return objects


def _pull_secret(run: Run, namespace: str, dockerconfigjson: bytes) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": PULL_SECRET, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "packetwalk",
                                    "packetwalk.io/run": run.id}},
            "data": {".dockerconfigjson": base64.b64encode(dockerconfigjson).decode()}}


def policy_objects(run: Run, policy: str) -> list[dict]:
    """A NetworkPolicy manifest (manifests/policy-<name>.yaml) for this run."""
    return render(f"policy-{policy}.yaml", NAMESPACE=run.namespace, RUN=run.id)


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
        # The run's own RoleBinding in each of its namespaces (selfbind.py).
        "RoleBinding": lambda: RbacAuthorizationV1Api(api).create_namespaced_role_binding(
            namespace, obj, _request_timeout=API_TIMEOUT),
    }
    creators[obj["kind"]]()


def deploy(api: ApiClient, objects: list[tuple[str, dict]]) -> dict[str, str]:
    """Create everything; returns {group: error} for groups that could not be created.
    A namespace that cannot be created stops the run (ClusterError)."""
    errors: dict[str, str] = {}
    for group, obj in objects:
        if group in errors:
            continue
        name = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        try:
            create(api, obj)
        except ApiException as exc:
            message = _api_message(exc)
            if obj["kind"] == "Namespace":
                raise ClusterError(f"cannot create {name}: {message}") from exc
            errors[group] = f"creating {name} failed: {message}"
    return errors


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


def _is_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return bool(pod.get("status", {}).get("podIP")) and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _events(core: CoreV1Api, namespace: str, name: str) -> str:
    try:
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}",
            _request_timeout=API_TIMEOUT).items
    except ApiException:
        return "events unavailable"
    recent = sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or ""))[-3:]
    return " | ".join(f"{e.reason}: {e.message}" for e in recent) or "no events"


def await_pods(api: ApiClient, run: Run, objects: list[tuple[str, dict]],
               timeout: float) -> tuple[dict[str, dict], dict[str, str], dict[str, str]]:
    """Wait until every planned pod is Ready or hopeless.

    Returns (ready pods by name as dicts, {group: error}, {pod name: image pull
    failure}). An error names the pod, its node, its state and its last events:
    what was awaited and why it never came.
    """
    core = CoreV1Api(api)
    wanted = {obj["metadata"]["name"]: (group, obj) for group, obj in objects
              if obj["kind"] == "Pod"}
    seen: dict[str, dict] = {}
    errors: dict[str, str] = {}

    def poll() -> bool:
        for namespace in (run.namespace, run.peer_namespace):
            for pod in core.list_namespaced_pod(namespace, label_selector=run.selector,
                                                _request_timeout=API_TIMEOUT).items:
                seen[pod.metadata.name] = api.sanitize_for_serialization(pod)
        pending = False
        for name, (group, obj) in wanted.items():
            if group in errors or (name in seen and _is_ready(seen[name])):
                continue
            hopeless, problem = _pod_problem(seen.get(name, {}))
            if hopeless:
                errors[group] = _never_ready(core, obj, problem)
            else:
                pending = True
        return not pending

    def state() -> str:
        return "; ".join(f"{name}: {_pod_problem(seen.get(name, {}))[1]}"
                         for name in wanted if not _is_ready(seen.get(name, {})))

    try:
        wait_for("the run's pods to become Ready", poll, timeout=timeout, interval=1.0,
                 state=state)
    except WaitTimeout as exc:
        for name, (group, obj) in wanted.items():
            if group not in errors and not _is_ready(seen.get(name, {})):
                errors[group] = _never_ready(core, obj, f"{exc}")
    ready = {name: pod for name, pod in seen.items() if _is_ready(pod)}
    pulls = {name: failure for name in wanted
             if (failure := _pull_failure(seen.get(name, {}))) is not None}
    return ready, errors, pulls


def _never_ready(core: CoreV1Api, obj: dict, problem: str) -> str:
    meta = obj["metadata"]
    node = obj["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchFields"][0]["values"][0]
    return (f"pod {meta['namespace']}/{meta['name']} (node {node}) never became Ready: "
            f"{problem}; events: {_events(core, meta['namespace'], meta['name'])}")


def await_endpoints(api: ApiClient, inventory: Inventory, timeout: float) -> None:
    """Wait until each Service's EndpointSlices list exactly its ready backends,
    so the first probe does not race the endpoints controller. Not an error if
    it never happens: the Service tests will then fail and say so."""
    discovery = DiscoveryV1Api(api)
    want = {name: {inventory.pods[b].ip for b in svc.backends if b in inventory.pods}
            for name, svc in inventory.services.items()}

    def ready_addresses() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        slices = discovery.list_namespaced_endpoint_slice(inventory.namespace,
                                                          _request_timeout=API_TIMEOUT)
        for item in slices.items:
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
        pass


def take_inventory(run: Run, nodes: list[Node], dns_ip: str | None,
                   objects: list[tuple[str, dict]], ready: dict[str, dict],
                   services: list[dict], errors: dict[str, str]) -> Inventory:
    """Assemble the Inventory from ready pods and created Services (pure)."""
    inventory = Inventory(run.id, run.namespace, run.peer_namespace, list(nodes), dns_ip,
                          errors=dict(errors))
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
            # Debug pods (--capture-packets) serve nothing: no port to dial.
            dial_port=int(next(iter(obj["spec"]["containers"][0].get("ports") or []),
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
            ports={p["name"]: p["port"] for p in ports},
            node_ports={p["name"]: p["nodePort"] for p in ports if p.get("nodePort")},
            backends=backends)
    return inventory


def list_services(api: ApiClient, run: Run) -> list[dict]:
    items = CoreV1Api(api).list_namespaced_service(run.namespace, label_selector=run.selector,
                                                   _request_timeout=API_TIMEOUT).items
    return [api.sanitize_for_serialization(s) for s in items]


def check_image_pulled(objects: list[tuple[str, dict]], pulls: dict[str, str], image: str) -> None:
    """Raise ImageUnavailable when every suite pod (not the optional capture pods)
    waits on its image: a wrong --image or a missing pull secret is said once, not
    once per test. Some pods pulling is a cluster fault: their tests error instead."""
    suite_pods = {obj["metadata"]["name"] for group, obj in objects
                  if obj["kind"] == "Pod" and group != DEBUG}
    if suite_pods and suite_pods <= set(pulls):
        raise ImageUnavailable(f"image {image} cannot be pulled on any node under test "
                               f"({pulls[min(suite_pods)]}); see --image and --image-pull-secret")


def bring_up(api: ApiClient, run: Run, nodes: list[Node], dns_ip: str | None, image: str,
             pull_secret: bytes | None, ready_timeout: float,
             debug_image: str | None = None, objects: list | None = None) -> Inventory:
    """Deploy, wait, inventory: the whole controller-side setup of a run."""
    objects = objects or plan(run, nodes, image, pull_secret, debug_image)  # the caller's plan
    errors = deploy(api, objects)
    ready, not_ready, pulls = await_pods(api, run, objects, ready_timeout)
    check_image_pulled(objects, pulls, image)
    errors.update({g: e for g, e in not_ready.items() if g not in errors})
    inventory = take_inventory(run, nodes, dns_ip, objects, ready, list_services(api, run),
                               errors)
    await_endpoints(api, inventory, timeout=30)
    return inventory
