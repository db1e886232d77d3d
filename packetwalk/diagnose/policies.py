"""The policies on a failing probe's path, read from the cluster, and what a wrong
policy cell means.

Every pod the traffic touches is read (the client, the pod or a Service's
backends it ends at, and the cluster DNS pods when it asked DNS), with the
NetworkPolicies of their namespaces; policyeval judges them and policytext
words it. Policy kinds beyond NetworkPolicy are only counted. Nothing read here
may break the diagnosis: what cannot be read is said in one short clause.
"""

from __future__ import annotations

from dataclasses import replace

import urllib3
from kubernetes.client import (
    ApiClient,
    ApisApi,
    CoreV1Api,
    CustomObjectsApi,
    NetworkingV1Api,
)
from kubernetes.client.rest import ApiException

from packetwalk.cluster import API_TIMEOUT
from packetwalk.diagnose.policyeval import Endpoint, Flow, judge
from packetwalk.diagnose.policytext import PathPolicies, also_present, on_the_path
from packetwalk.diagnose.touched import DNS_PORT, Touched
from packetwalk.families import NAMES as FAMILY_NAMES
from packetwalk.inventory import Pod
from packetwalk.netfacts import IGNORES_POD_IP_BLOCKS

DNS_NAMESPACE = "kube-system"
# Policy kinds this diagnosis does not evaluate: (API group, resource, what to call it).
OTHER_KINDS = (
    ("policy.networking.k8s.io", "adminnetworkpolicies", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy"),
    ("policy.networking.k8s.io", "clusternetworkpolicies", "ClusterNetworkPolicy"),
    ("cilium.io", "ciliumnetworkpolicies", "CiliumNetworkPolicy"),
    ("cilium.io", "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy"),
    ("projectcalico.org", "networkpolicies", "Calico NetworkPolicy"),
    ("projectcalico.org", "globalnetworkpolicies", "Calico GlobalNetworkPolicy"),
    ("crd.projectcalico.org", "networkpolicies", "Calico NetworkPolicy"),
    ("crd.projectcalico.org", "globalnetworkpolicies", "Calico GlobalNetworkPolicy"),
)
# Calico's API server (projectcalico.org) serves the same objects as its CRDs: count once.
SAME_OBJECTS = {"crd.projectcalico.org": "projectcalico.org"}
READ_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def _why(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return type(exc).__name__


def _endpoint(pod: dict, namespaces: dict[str, dict]) -> Endpoint:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ports = tuple(port for container in spec.get("containers") or []
                  for port in container.get("ports") or [])
    # A hostNetwork pod sends as its node: no policy selects it, only an ipBlock matches it.
    labels = None if spec.get("hostNetwork") else meta.get("labels") or {}
    return Endpoint(meta["name"], meta["namespace"], status.get("podIP") or "", labels,
                    namespaces.get(meta["namespace"], {}), spec.get("nodeName") or "", ports)


class _Reader:
    """One diagnosis's reads; `notes` collects what could not be read."""

    def __init__(self, api: ApiClient):
        self.api, self.core = api, CoreV1Api(api)
        self.notes: list[str] = []

    def plain(self, obj: object) -> dict:
        return self.api.sanitize_for_serialization(obj)

    def namespace_labels(self) -> dict[str, dict]:
        try:
            found = self.core.list_namespace(_request_timeout=API_TIMEOUT).items
        except READ_ERRORS as exc:
            self.notes.append(f"cannot list namespaces ({_why(exc)}): namespaceSelectors "
                              "judged without labels")
            return {}
        return {n.metadata.name: n.metadata.labels or {} for n in found}

    def pod(self, pod: Pod, namespaces: dict[str, dict]) -> Endpoint:
        try:
            read = self.core.read_namespaced_pod(pod.name, pod.namespace,
                                                 _request_timeout=API_TIMEOUT)
            return _endpoint(self.plain(read), namespaces)
        except READ_ERRORS as exc:
            self.notes.append(f"cannot read pod {pod.name} ({_why(exc)})")
            return Endpoint(pod.name, pod.namespace, pod.ip, {}, namespaces.get(pod.namespace, {}),
                            pod.node)

    def dns_pods(self, dns_ip: str | None, protocol: str,
                 namespaces: dict[str, dict]) -> list[tuple[Endpoint, int]]:
        """The pods behind the Service holding the cluster DNS IP, each with the port
        a lookup over `protocol` reaches (its targetPort, resolved on the pod)."""
        try:
            services = [self.plain(s) for s in self.core.list_namespaced_service(
                DNS_NAMESPACE, _request_timeout=API_TIMEOUT).items]
            service = next((s for s in services if dns_ip and s["spec"].get("clusterIP") == dns_ip),
                           None)
            if service is None:
                self.notes.append(f"no Service in {DNS_NAMESPACE} holds the DNS IP {dns_ip}: "
                                  "the DNS pods were not evaluated")
                return []
            selector = service["spec"].get("selector") or {}
            if not selector:
                self.notes.append(f"{DNS_NAMESPACE}/{service['metadata']['name']} has no "
                                  "selector: the DNS pods were not evaluated")
                return []
            listed = self.core.list_namespaced_pod(
                DNS_NAMESPACE, label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
                _request_timeout=API_TIMEOUT).items
        except READ_ERRORS as exc:
            self.notes.append(f"cannot read the DNS Service's pods ({_why(exc)})")
            return []
        wanted = next((p.get("targetPort") or p["port"] for p in service["spec"].get("ports") or []
                       if p["port"] == DNS_PORT and (p.get("protocol") or "TCP") == protocol),
                      DNS_PORT)
        found = []
        for pod in (_endpoint(self.plain(p), namespaces) for p in listed):
            if not pod.ip:
                continue
            port = wanted if isinstance(wanted, int) else next(
                (p["containerPort"] for p in pod.ports if p.get("name") == wanted), DNS_PORT)
            found.append((pod, port))
        return found

    def policies(self, namespace: str) -> list[dict]:
        try:
            listed = NetworkingV1Api(self.api).list_namespaced_network_policy(
                namespace, _request_timeout=API_TIMEOUT).items
        except READ_ERRORS as exc:
            self.notes.append(f"cannot list NetworkPolicies in {namespace} ({_why(exc)})")
            return []
        return [self.plain(p) for p in listed]

    def other_kinds(self) -> str | None:
        """'also present, not evaluated: ...' for the policy kinds served and holding objects."""
        counts: list[tuple[str, int]] = []
        unreadable: list[str] = []
        try:
            groups = {g.name: g.preferred_version.version for g in
                      ApisApi(self.api).get_api_versions(_request_timeout=API_TIMEOUT).groups}
        except READ_ERRORS as exc:
            return also_present([], [f"the API groups ({_why(exc)})"])
        custom = CustomObjectsApi(self.api)
        served: dict[str, set[str]] = {}
        for group, plural, kind in OTHER_KINDS:
            if group not in groups or SAME_OBJECTS.get(group) in groups:
                continue
            version = groups[group]
            try:
                if group not in served:
                    served[group] = {r.name for r in custom.get_api_resources(
                        group, version, _request_timeout=API_TIMEOUT).resources}
                if plural not in served[group]:
                    continue
                items = custom.list_cluster_custom_object(
                    group, version, plural, _request_timeout=API_TIMEOUT).get("items") or []
            except READ_ERRORS as exc:
                if isinstance(exc, ApiException) and exc.status == 404:
                    continue  # not served after all: there is nothing of that kind
                unreadable.append(f"{kind} ({_why(exc)})")
                continue
            if items:
                counts.append((kind, len(items)))
        return also_present(counts, unreadable)


def on_path(api: ApiClient, src: Pod, path: Touched, dns_ip: str | None) -> PathPolicies:
    """What the NetworkPolicies selecting every pod on the path say about the traffic."""
    reader = _Reader(api)
    namespaces = reader.namespace_labels()
    client = reader.pod(src, namespaces)
    flows = [Flow(client, reader.pod(pod, namespaces), port, protocol.upper())
             for pod, port, protocol in path.servers]
    if path.dns is not None:
        flows += [Flow(client, pod, port, path.dns.upper())
                  for pod, port in reader.dns_pods(dns_ip, path.dns.upper(), namespaces)]
    by_namespace: dict[str, list[dict]] = {}
    for namespace in sorted({e.namespace for f in flows for e in (f.src, f.dst)}
                            | {client.namespace}):
        by_namespace[namespace] = reader.policies(namespace)
    known = [p for listed in by_namespace.values() for p in listed]
    found = on_the_path([(flow, judge(flow, known)) for flow in flows],
                        pods=[client.name])
    extra = [line for line in (reader.other_kinds(),) if line] + reader.notes
    return replace(found, lines=found.lines + tuple(extra))


def conclude_cell(expected: str, observed: str, found: PathPolicies, server_node: str,
                  family: str | None = None) -> str:
    """One sentence for a policy cell that came out wrong. `expected`: "open" or
    "blocked"; `observed`: the probe's class; `found`: what on_path read and judged;
    `family`: the cell's IP family on a dual-stack run (an enforcer may police one)."""
    denying = ", ".join(found.denying)
    if expected != "open" and observed == "OK":
        if found.denying:
            if family:
                name = FAMILY_NAMES[family]
                return (f"{denying} should block it, yet the traffic passed in {name}: "
                        f"NetworkPolicy is not enforced for {name} (does the policy enforcer "
                        f"on {server_node} run, and police {name}?)")
            return (f"{denying} should block it, yet the traffic passed: NetworkPolicy is not "
                    f"enforced (is the policy enforcer running on {server_node}?)")
        if found.selected:
            return ("policies select these pods but their rules admit this traffic: the "
                    "case's policy, as the API holds it, does not block it")
        return ("no NetworkPolicy selects these pods: the policy never reached the API, "
                "or its podSelector misses them")
    if found.denying:
        return f"{observed}: {denying} denies this traffic by its rules"
    if found.selected and found.by_ip_block:
        return (f"traffic the policies admit only by an ipBlock holding a pod's IP "
                f"({', '.join(found.by_ip_block)}) is {observed}: the API means ipBlock for "
                "cluster-external addresses, and some enforcers never match a pod by it ("
                + "; ".join(f"{cni} documents this: {where}"
                            for cni, (_, where) in IGNORES_POD_IP_BLOCKS.items()) + ")")
    if found.selected:
        return (f"traffic the policies allow is {observed}: their rules (peers, ports) or the "
                "enforcer's rule order block it")
    return f"{observed} although no NetworkPolicy selects these pods: not a policy problem, look below it"
