"""Which cluster, can we reach it, may we do what the suite needs, and its facts.

Everything that can go wrong here is the user's setup, not the network under
test, so it surfaces as one ClusterError line (the plugin turns it into a
usage error and a non-zero exit before any test runs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
import yaml
from kubernetes import config as kubeconfig
from kubernetes.client import (
    ApiClient,
    AuthenticationV1Api,
    AuthorizationV1Api,
    Configuration,
    CoreV1Api,
    VersionApi,
)
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from packetwalk import aboutlab
from packetwalk.families import ClusterFamilies, detect
from packetwalk.inventory import DnsServer
from packetwalk.placement import Node, left_out, schedulable_nodes
from packetwalk.selfbind import RUN_NAMESPACE_ROLE
from packetwalk.tiers import DEFAULT_POOL, NodePool

# Seconds for one ordinary API call (connect and read). The suite's own waits
# are bounded separately; a single call should never hang a run.
API_TIMEOUT = 10


class ClusterError(Exception):
    """A setup problem worth exactly one line to the user."""


@dataclass(frozen=True)
class Target:
    """The chosen cluster. kubeconfig None means in-cluster service account."""

    kubeconfig: str | None
    context: str | None
    source: str  # how it was chosen, for messages: "--kubeconfig", "KUBECONFIG", ...

    def describe(self) -> str:
        where = self.kubeconfig or "in-cluster service account"
        return f"{where} (context {self.context})" if self.context else where


def choose_target(kubeconfig_opt: str | None, context: str | None,
                  environ: dict[str, str], home: Path,
                  lab_info: Path = aboutlab.LAB_INFO) -> Target:
    """--kubeconfig, else KUBECONFIG, else ~/.kube/config, else the lab's, else in-cluster."""
    if kubeconfig_opt:
        return Target(kubeconfig_opt, context, "--kubeconfig")
    if environ.get("KUBECONFIG"):
        return Target(environ["KUBECONFIG"], context, "KUBECONFIG")
    default = home / ".kube" / "config"
    if default.is_file():
        return Target(str(default), context, "~/.kube/config")
    unusable = ""
    try:
        lab = aboutlab.load(lab_info)
    except aboutlab.LabInfoError as exc:
        lab, unusable = None, f"; {exc}"
    if lab and Path(lab.kubeconfig).is_file():
        return Target(lab.kubeconfig, context, "the lab")
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return Target(None, None, "in-cluster")
    raise ClusterError("no cluster given: pass --kubeconfig/--context or set KUBECONFIG "
                       f"(or bring the lab up: `lab up` of the packetwalk command{unusable})")


# What the kubernetes client raises for a kubeconfig that is not one: not YAML,
# or YAML of the wrong shape (it indexes into whatever it finds).
UNUSABLE = (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError,
            AttributeError, IndexError)


def _first_line(exc: Exception) -> str:
    """Why a kubeconfig is unusable, in one line."""
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return f"not YAML ({getattr(exc, 'problem', None) or exc}{where})"
    if isinstance(exc, (TypeError, KeyError, AttributeError, IndexError)):
        return ("not a kubeconfig (clusters, contexts and users must be lists of named "
                f"entries: {type(exc).__name__} {exc})")
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def load_configuration(target: Target) -> Configuration:
    """A client Configuration for `target`, with unknown contexts named clearly."""
    configuration = Configuration()
    if target.kubeconfig is None:
        kubeconfig.load_incluster_config(client_configuration=configuration)
    else:
        paths = [p for p in target.kubeconfig.split(os.pathsep) if p]
        if not any(Path(p).is_file() for p in paths):
            raise ClusterError(f"kubeconfig {target.kubeconfig} ({target.source}) does not exist")
        try:
            contexts, _ = kubeconfig.list_kube_config_contexts(config_file=target.kubeconfig)
        except UNUSABLE as exc:
            raise ClusterError(f"kubeconfig {target.kubeconfig} is unusable: {_first_line(exc)}") from exc
        names = [c["name"] for c in contexts or []]
        if target.context and target.context not in names:
            raise ClusterError(f"context {target.context!r} not found in {target.kubeconfig} "
                               f"(known: {', '.join(names) or 'none'})")
        try:
            kubeconfig.load_kube_config(config_file=target.kubeconfig, context=target.context,
                                        client_configuration=configuration)
        except UNUSABLE as exc:
            raise ClusterError(f"kubeconfig {target.kubeconfig}: {_first_line(exc)}") from exc
    # One retry only: urllib3's default of three multiplies every timeout.
    configuration.retries = 1
    return configuration


def check_reachable(api: ApiClient) -> str:
    """The server's version, or one line saying why the API server can't be reached."""
    host = api.configuration.host
    try:
        return VersionApi(api).get_code(_request_timeout=API_TIMEOUT).git_version
    except ApiException as exc:
        if exc.status in (401, 403):
            # /version is usually public; a refusal here means credentials are wrong.
            raise ClusterError(f"API server {host} rejected our credentials "
                               f"({exc.status} {exc.reason})") from exc
        raise ClusterError(f"API server {host} answered {exc.status} {exc.reason}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterError(f"cannot reach the API server {host}: {reason}") from exc


@dataclass(frozen=True)
class Access:
    """One permission the suite needs. namespace "" = cluster-scoped;
    "<run>" = the run's own namespaces (checked against the real name)."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespace: str = "<run>"
    name: str = ""


# Granted by manifests/rbac-restricted.yaml (a unit test keeps them in step).
# Cluster-wide, or in kube-system: held before the run makes anything.
CLUSTER_ACCESS = (
    Access("list", "nodes", namespace=""),
    Access("create", "namespaces", namespace=""),
    Access("list", "namespaces", namespace=""),
    Access("list", "services", namespace="kube-system"),
)
# Inside the run's namespaces: held already (an admin), or granted by the run's own
# RoleBinding of packetwalk-run-namespace (SELF_BIND_ACCESS; see selfbind.py). A
# RoleBinding in namespace X also covers the namespace object X (patch, delete).
RUN_ACCESS = (
    Access("delete", "namespaces"),
    Access("patch", "namespaces"),
    Access("create", "pods"),
    Access("list", "pods"),
    Access("create", "pods", subresource="exec"),
    Access("get", "pods", subresource="exec"),
    Access("create", "services"),
    Access("list", "endpointslices", group="discovery.k8s.io"),
    Access("list", "events"),
    Access("create", "networkpolicies", group="networking.k8s.io"),
    Access("delete", "networkpolicies", group="networking.k8s.io"),
    # NetworkPolicy cases update a policy in place and relabel their own pods.
    Access("update", "networkpolicies", group="networking.k8s.io"),
    Access("patch", "pods"),
)
SELF_BIND_ACCESS = (
    Access("create", "rolebindings", group="rbac.authorization.k8s.io"),
    Access("bind", "clusterroles", group="rbac.authorization.k8s.io", namespace="",
           name=RUN_NAMESPACE_ROLE),
)
REQUIRED_ACCESS = CLUSTER_ACCESS + RUN_ACCESS


def missing_access(api: ApiClient, run_namespace: str,
                   needed: tuple[Access, ...] = REQUIRED_ACCESS) -> list[Access]:
    """The permissions SelfSubjectAccessReview says we lack."""
    authz = AuthorizationV1Api(api)
    missing = []
    for access in needed:
        namespace = run_namespace if access.namespace == "<run>" else access.namespace
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {
                    "verb": access.verb, "resource": access.resource, "group": access.group,
                    "subresource": access.subresource, "namespace": namespace,
                    "name": access.name}}}
        try:
            review = authz.create_self_subject_access_review(body, _request_timeout=API_TIMEOUT)
        except ApiException as exc:
            raise ClusterError(f"cannot ask the API server what we may do "
                               f"({exc.status} {exc.reason})") from exc
        if not review.status.allowed:
            missing.append(access)
    return missing


def whoami(api: ApiClient) -> str | None:
    """The user the API server sees, so a refusal names whom to grant; None when
    the server cannot say (SelfSubjectReview is GA only since 1.28)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        review = AuthenticationV1Api(api).create_self_subject_review(body, _request_timeout=API_TIMEOUT)
    except (ApiException, urllib3.exceptions.HTTPError):
        return None
    return review.status.user_info.username if review.status and review.status.user_info else None


def describe_access(access: Access) -> str:
    resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
    resource += f" {access.name}" if access.name else ""
    group = f".{access.group}" if access.group else ""
    scope = f" in {access.namespace}" if access.namespace not in ("", "<run>") else ""
    return f"{access.verb} {resource}{group}{scope}"


@dataclass(frozen=True)
class Facts:
    """What the suite needs to know about the cluster before deploying anything."""

    version: str
    nodes: tuple[Node, ...]  # schedulable, sorted
    dns_ip: str | None  # ClusterIP of the cluster DNS Service (kube-system, k8s-app=kube-dns)
    pool: str = ""  # which nodes the run may use, and why (--node-selector, --toleration)
    bind_as: str | None = None  # who the run binds in its namespaces (selfbind.py), if needed
    dns_servers: tuple[DnsServer, ...] = ()  # the ready pods behind the DNS Service
    dns_servers_unknown: str = ""  # why they could not be listed, if not
    families: ClusterFamilies = field(default_factory=ClusterFamilies)  # the IP families it shows (families.detect)


def discover_facts(api: ApiClient, version: str, pool: NodePool = DEFAULT_POOL,
                   bind_as: str | None = None) -> Facts:
    core = CoreV1Api(api)
    try:
        node_list = core.list_node(_request_timeout=API_TIMEOUT)
        dns = core.list_namespaced_service("kube-system", label_selector="k8s-app=kube-dns",
                                           _request_timeout=API_TIMEOUT).items
    except ApiException as exc:
        raise ClusterError(f"listing nodes and the DNS Service failed: "
                           f"{exc.status} {exc.reason}") from exc
    plain = [api.sanitize_for_serialization(n) for n in node_list.items]
    nodes = schedulable_nodes(plain, pool)
    if not nodes:
        raise ClusterError(f"no schedulable node among {len(node_list.items)} "
                           f"(all NotReady, cordoned, tainted NoSchedule/NoExecute without a "
                           f"--toleration, or not {pool.describe()})")
    dns_ip = dns[0].spec.cluster_ip if dns else None
    servers, unknown = dns_servers(core, dns[0]) if dns else ((), "no DNS Service found")
    usable = {n.name for n in nodes}
    families = detect([n for n in plain if n["metadata"]["name"] in usable],
                      api.sanitize_for_serialization(dns[0]) if dns else None,
                      [ip for server in servers for ip in server.ips])
    return Facts(version=version, nodes=tuple(nodes), dns_ip=dns_ip,
                 dns_servers=servers, dns_servers_unknown=unknown, families=families,
                 pool=f"{len(nodes)} of {len(node_list.items)} nodes usable: {pool.describe()}"
                      + (f"; left out: {', '.join(out)}" if (out := left_out(plain, pool)) else ""),
                 bind_as=bind_as)


def dns_servers(core: CoreV1Api, service) -> tuple[tuple[DnsServer, ...], str]:
    """The Ready pods the DNS Service selects, by node: a lookup through the
    Service reaches one of them at random, so DNS is tested on each. With why
    they are unknown instead, when the Service has no selector or its pods
    cannot be listed (an empty tuple and no reason: none is ready)."""
    selector = service.spec.selector or {}
    if not selector:
        return (), f"the DNS Service {service.metadata.name} has no selector"
    try:
        pods = core.list_namespaced_pod(
            service.metadata.namespace, _request_timeout=API_TIMEOUT,
            label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items()))).items
    except ApiException as exc:
        return (), f"listing the DNS pods in {service.metadata.namespace}: {exc.status} {exc.reason}"
    # A terminating pod may still read Ready (CoreDNS's lameduck): it is leaving.
    ready = [p for p in pods if p.status.pod_ip and p.spec.node_name
             and p.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    return tuple(sorted((DnsServer(p.metadata.name, p.metadata.namespace, p.spec.node_name,
                                   p.status.pod_ip,
                                   tuple(i.ip for i in p.status.pod_ips or [] if i.ip))
                         for p in ready),
                        key=lambda d: (d.node, d.name))), ""


def connect(target: Target, run_namespace: str,
            pool: NodePool = DEFAULT_POOL) -> tuple[Configuration, Facts]:
    """Preflight: configuration, reachability, permissions, facts. Raises ClusterError."""
    configuration = load_configuration(target)
    api = ApiClient(configuration)
    version = check_reachable(api)
    missing = missing_access(api, run_namespace, CLUSTER_ACCESS)
    in_namespace = missing_access(api, run_namespace, RUN_ACCESS)
    user = whoami(api) if missing or in_namespace else None
    bind_as = None
    if in_namespace:
        cannot_bind = missing_access(api, run_namespace, SELF_BIND_ACCESS)
        if not cannot_bind and user:
            bind_as, in_namespace = user, []
        else:
            in_namespace += cannot_bind
    missing += in_namespace
    if missing:
        raise ClusterError(
            f"RBAC forbids what the suite needs on {target.describe()}"
            f"{f' as {user}' if user else ''}: "
            f"{', '.join(describe_access(a) for a in missing)} "
            "(grant manifests/rbac-restricted.yaml)")
    return configuration, discover_facts(api, version, pool, bind_as)
