"""Privilege tiers and what a run may pull and where it may land. Pure.

A run's pods come in three tiers, each in its own namespace where it matters:
`restricted` (the pod hops, Pod Security restricted), `host-network` (the
pod<->node hops, hostNetwork pods in the run's -host namespace, Pod Security
privileged) and `capture` (--capture-packets debug pods, privileged, same
namespace). The values the user gives for images, node selectors, tolerations
and annotations are parsed here, each bad one a ValueError of one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
RESTRICTED, HOST_NETWORK, CAPTURE = "restricted", "host-network", "capture"
TIERS = (RESTRICTED, HOST_NETWORK, CAPTURE)
# Pod Security level each tier's namespace is labelled with.
PSA_LEVEL = {RESTRICTED: "restricted", HOST_NETWORK: "privileged", CAPTURE: "privileged"}
LINUX = {"kubernetes.io/os": "linux"}  # never a Windows node
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"^({_DNS_SUBDOMAIN}/)?{_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def run_images(image: str = DEFAULT_IMAGE, debug_image: str = DEFAULT_IMAGE,
               registry: str | None = None) -> list[tuple[str, str]]:
    """(tier, image) for every image a run may use, rewritten for `registry`."""
    return [(RESTRICTED, mirrored(image, registry)), (HOST_NETWORK, mirrored(image, registry)),
            (CAPTURE, mirrored(debug_image, registry))]


def split_registry(image: str) -> tuple[str, str]:
    """(registry host, the rest) of an image reference. As Docker reads it, the
    first component is a host only when it has a dot or a port or is localhost;
    otherwise the host is docker.io, and a one-component name is under library/."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", image if sep else f"library/{image}"


def mirrored(image: str, registry: str | None) -> str:
    """`image` pulled from `registry` (HOST[:PORT][/PATH]) instead: its registry host
    is replaced, its path, tag and digest kept.
    registry.k8s.io/e2e-test-images/agnhost:2.66.1 with mirror.example/pw is
    mirror.example/pw/e2e-test-images/agnhost:2.66.1."""
    if not registry:
        return image
    return f"{registry}/{split_registry(image)[1]}"


def check_registry(value: str) -> str:
    """--image-registry, checked: a host (a dot, a port or localhost, else it would
    read as a Docker Hub path) and an optional path; no scheme, no tag."""
    registry = value.strip().rstrip("/")
    host = registry.split("/")[0]
    if not _REGISTRY.match(registry) or split_registry(f"{registry}/x")[0] != host:
        raise ValueError(f"--image-registry {value!r}: expected HOST[:PORT][/PATH], "
                         "e.g. mirror.example/pw (no scheme, no tag)")
    return registry


def parse_key_value(option: str, value: str, *, label: bool) -> tuple[str, str]:
    """KEY=VALUE of --node-selector (a label: the value is checked too) or
    --service-annotation (any value)."""
    key, sep, val = value.partition("=")
    if not sep or not _KEY.match(key) or (label and not _LABEL_VALUE.match(val)):
        what = "a label" if label else "an annotation"
        raise ValueError(f"{option} {value!r}: expected KEY=VALUE with {what} key "
                         "such as example.com/pool=net")
    return key, val


@dataclass(frozen=True)
class Toleration:
    """--toleration KEY[=VALUE]:EFFECT: Equal with a value, Exists without."""

    key: str
    value: str | None
    effect: str

    def as_dict(self) -> dict:
        if self.value is None:
            return {"key": self.key, "operator": "Exists", "effect": self.effect}
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}

    def tolerates(self, taint: dict) -> bool:
        return (taint.get("key") == self.key and taint.get("effect") == self.effect
                and (self.value is None or (taint.get("value") or "") == self.value))

    def __str__(self) -> str:
        return f"{self.key}{'' if self.value is None else '=' + self.value}:{self.effect}"


def parse_toleration(value: str) -> Toleration:
    spec, sep, effect = value.rpartition(":")
    key, has_value, val = spec.partition("=")
    if (not sep or effect not in TAINT_EFFECTS or not _KEY.match(key)
            or (has_value and not _LABEL_VALUE.match(val))):
        raise ValueError(f"--toleration {value!r}: expected KEY[=VALUE]:EFFECT with EFFECT "
                         f"one of {', '.join(TAINT_EFFECTS)}")
    return Toleration(key, val if has_value else None, effect)


@dataclass(frozen=True)
class NodePool:
    """The nodes a run may use: those with every selector label whose blocking
    taints are all tolerated. `kubernetes.io/os=linux` always applies."""

    selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()

    @property
    def node_selector(self) -> dict[str, str]:
        return {**LINUX, **dict(self.selector)}

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.node_selector.items())

    def tolerated(self, taint: dict) -> bool:
        return any(t.tolerates(taint) for t in self.tolerations)

    def describe(self) -> str:
        """Why these nodes: 'labelled kubernetes.io/os=linux, pool=net; tolerating x:NoSchedule'."""
        text = "labelled " + ", ".join(f"{k}={v}" for k, v in self.node_selector.items())
        if self.tolerations:
            text += "; tolerating " + ", ".join(str(t) for t in self.tolerations)
        return text


@dataclass(frozen=True)
class Exposure:
    """What a run shows beyond the cluster, only when asked: --load-balancer, --ingress,
    with --service-annotation on both."""

    load_balancer: bool = False
    ingress: bool = False
    annotations: tuple[tuple[str, str], ...] = ()


DEFAULT_POOL = NodePool()  # any Linux node without a blocking taint
NO_EXPOSURE = Exposure()  # nothing facing outside the cluster

NOT_REQUESTED = "not requested: "  # the start of every skip reason for a group left out
NOT_REQUESTED_LB = (f"{NOT_REQUESTED}pass --load-balancer (creates a Service of type "
                    "LoadBalancer, which may get a public address)")
NOT_REQUESTED_INGRESS = (f"{NOT_REQUESTED}pass --ingress (creates an Ingress, which the "
                         "cluster's ingress controller may expose publicly)")
NOT_REQUESTED_HOST = (f"{NOT_REQUESTED}--no-host-network plans no hostNetwork pods "
                      "(the pod<->node hops need them)")
# Read from the command line before collection (selection.py): seen only if that
# reading was wrong, which it is built never to be.
NOT_REQUESTED_POLICY = (f"{NOT_REQUESTED}the selection was read as running no NetworkPolicy "
                        "case, so no NetworkPolicy lane was deployed")
