"""Pod events for a test that errored: why its pods were not usable."""

from __future__ import annotations

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT

LIMIT = 15


def recent(api: ApiClient, namespaces: list[str]) -> str:
    """The newest pod events of the run's namespaces, oldest first, one per line."""
    core = CoreV1Api(api)
    events = []
    try:
        for namespace in namespaces:
            events += core.list_namespaced_event(
                namespace, field_selector="involvedObject.kind=Pod",
                _request_timeout=API_TIMEOUT).items
    except (ApiException, OSError) as exc:
        return f"events unavailable: {exc}"
    events.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
    return "\n".join(f"{e.type} {e.involved_object.namespace}/{e.involved_object.name} "
                     f"{e.reason}: {e.message}" for e in events[-LIMIT:]) or "no pod events"
