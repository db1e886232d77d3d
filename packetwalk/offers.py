"""What the cluster offers beyond Services: load-balancer addresses and Ingress.

A cluster offers load balancers when its LoadBalancer Service gets an external
address, and Ingress when an IngressClass exists (both created only when the
user asks: --load-balancer, --ingress). Neither can be asked
directly, so both are observed; "not offered" is a skip with its reason,
never a failure.
"""

from __future__ import annotations

from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT
from packetwalk.waiting import WaitTimeout, wait_for

# How long a LoadBalancer Service may stay pending before we call load balancers
# "not offered". Counted from the test, which runs after the whole deploy, so a
# real controller has had longer than this already.
LB_WAIT = 15
INGRESS_WAIT = 90  # controllers publish an Ingress address slower than a Service's


def ingress_address(status: dict | None) -> str | None:
    """The first IP or hostname of a status.loadBalancer (Service or Ingress), pure."""
    for entry in ((status or {}).get("loadBalancer") or {}).get("ingress") or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return address
    return None


def _await_address(api: ApiClient, read, what: str, wait: float,
                   absent: str) -> tuple[str | None, str]:
    """Poll `read()` (a Service or Ingress) until its status has an address:
    (address, "") or (None, why not)."""
    found: dict = {}

    def published() -> bool:
        found["address"] = ingress_address(api.sanitize_for_serialization(read().status))
        return found["address"] is not None

    try:
        wait_for(f"{what} to get an address", published, timeout=wait, interval=1.0)
    except WaitTimeout:
        return None, absent
    except ApiException as exc:
        return None, f"reading {what} failed: {exc.status} {exc.reason}"
    return found["address"], ""


def load_balancer_address(api: ApiClient, namespace: str, name: str,
                          wait: float = LB_WAIT) -> tuple[str | None, str]:
    """(address, why not) of a LoadBalancer Service, waiting up to `wait` seconds."""
    core = CoreV1Api(api)
    return _await_address(
        api, lambda: core.read_namespaced_service(name, namespace, _request_timeout=API_TIMEOUT),
        f"Service {namespace}/{name}", wait,
        f"no LoadBalancer offered: Service {name} got no external address within {wait}s "
        "(no load-balancer controller?)")


def ingress_classes(api: ApiClient) -> tuple[list[str], str]:
    """(IngressClass names, why none can be used)."""
    try:
        items = NetworkingV1Api(api).list_ingress_class(_request_timeout=API_TIMEOUT).items
    except ApiException as exc:
        return [], f"listing IngressClasses failed: {exc.status} {exc.reason}"
    names = sorted(item.metadata.name for item in items)
    return names, "" if names else "no Ingress offered: the cluster has no IngressClass"


def ingress_manifest(namespace: str, run_id: str, ingress_class: str | None, service: str,
                     port: int) -> dict:
    """An Ingress sending every path to `service` (pure); without a class, the
    caller fills one in before creating it."""
    spec: dict = {"rules": [{"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}}}]}}]}
    if ingress_class is not None:
        spec = {"ingressClassName": ingress_class, **spec}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "servers", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "packetwalk",
                                "packetwalk.io/run": run_id}},
        "spec": spec,
    }


def ingress_address_of(api: ApiClient, namespace: str, name: str,
                       wait: float = INGRESS_WAIT) -> tuple[str | None, str]:
    """(address, why not) of the run's Ingress (created with the run's workloads,
    only with --ingress), waiting up to `wait` seconds for its controller."""
    net = NetworkingV1Api(api)
    return _await_address(
        api, lambda: net.read_namespaced_ingress(name, namespace, _request_timeout=API_TIMEOUT),
        f"Ingress {namespace}/{name}", wait,
        f"Ingress {name} got no address within {wait}s (no ingress controller for its class?)")
