"""packetwalk's command-line options: declared, asked for, parsed once.

The controller (or the only process) parses them in its pytest_configure into
one frozen Options, validated there (a bad value is one UsageError line
before any cluster contact), and hands it to the xdist workers with the run.
Nothing else reads packetwalk's options from pytest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest

from packetwalk.attempts import DEFAULT_ATTEMPTS, MAX_ATTEMPTS
from packetwalk.during import parse_duration
from packetwalk.families import AUTO
from packetwalk.families import CHOICES as IP_FAMILIES
from packetwalk.tiers import (
    DEFAULT_IMAGE,
    Exposure,
    NodePool,
    Toleration,
    check_registry,
    mirrored,
    parse_key_value,
    parse_toleration,
)
from packetwalk.vantage import ExternalTarget, parse_ip_list, parse_targets

# Seconds a NetworkPolicy change may take to be enforced (--policy-timeout). kube-router
# on the lab enforces within about 1 s (the report's "enforced after" line).
DEFAULT_POLICY_TIMEOUT = 20.0

DEFAULT_SETTLE = 30.0  # seconds a watch goes on after CMD ends
DEFAULT_MAX_OUTAGE = 5.0  # seconds of outage a watched cell may show
CAPTURE_DIR = "reports/captures"  # --capture-packets pcaps, under the directory pytest runs in
ASK = "packetwalk"  # the ini key, and the variable a conftest.py sets to True, that ask for it


def add_options(parser: pytest.Parser) -> None:
    parser.addini(ASK, type="bool", default=False,
                  help="packetwalk: deploy and walk the cluster for this project's tests")
    group = parser.getgroup("packetwalk", "packetwalk: Kubernetes network conformance")
    group.addoption("--packetwalk", action="store_true",
                    help="walk the cluster for the tests of this run (packetwalk's own suites "
                         "ask for it in suites/conftest.py)")
    group.addoption("--kubeconfig", metavar="PATH",
                    help="kubeconfig of the cluster under test (default: KUBECONFIG, "
                         "~/.kube/config, then the lab's)")
    group.addoption("--context", metavar="NAME", help="kubeconfig context to use")
    group.addoption("--image", default=DEFAULT_IMAGE,
                    help="agnhost image for every pod (mirror it for air-gapped clusters)")
    group.addoption("--image-pull-secret", metavar="FILE",
                    help="a .dockerconfigjson file; becomes the pods' imagePullSecret")
    group.addoption("--nodes", metavar="A[,B]",
                    help="the schedulable nodes to place workloads on, client node first "
                         "(default: the first two by name); one node skips cross-node tests")
    group.addoption("--keep", action="store_true",
                    help="leave the run's namespaces in place for debugging")
    group.addoption("--wait-cleanup", action="store_true",
                    help="wait until the run's namespaces are gone before exiting (default: "
                         "delete them and leave the waiting to the cluster)")
    group.addoption("--ready-timeout", type=float, default=120, metavar="SECONDS",
                    help="how long the run's pods may take to become Ready")
    group.addoption("--attempts", type=int, default=DEFAULT_ATTEMPTS, metavar="N",
                    help="attempts per probe cell, at once where the probe allows: a cell "
                         "is broken when every attempt fails, flaky (k/N) when some do "
                         f"(default {DEFAULT_ATTEMPTS}, at most {MAX_ATTEMPTS})")
    group.addoption("--policy-timeout", type=float, default=DEFAULT_POLICY_TIMEOUT, metavar="SECONDS",
                    help="how long a NetworkPolicy change may take to be enforced before its "
                         f"cells count as wrong (default {DEFAULT_POLICY_TIMEOUT:g}; raise it for "
                         "enforcers that sync slowly, the report gives the times measured)")
    group.addoption("--ip-family", choices=IP_FAMILIES, default=AUTO,
                    help="the IP families to walk: auto = every family the cluster has (on a "
                         "dual-stack cluster each hop with a family runs in both, its id ending "
                         "in -ipv4 or -ipv6); ipv4 or ipv6 = that one; dual = both, skipping "
                         "when the cluster is not dual-stack (docs/ipv6.md)")
    group.addoption("--no-diagnose", action="store_true",
                    help="report failures as observed, without the narrowing probes (faster when "
                         "many hops fail, e.g. in the self-check)")
    group.addoption("--capture-packets", action="store_true",
                    help="when a hop fails, tcpdump at the client's and the server's node "
                         "while the probe is retried (needs privileged hostNetwork pods); "
                         f"pcaps go to {CAPTURE_DIR}/<run>/")
    group.addoption("--debug-image", default=DEFAULT_IMAGE, metavar="IMAGE",
                    help="image of the --capture-packets debug pods: needs sh, ip, tcpdump, conntrack, "
                         "base64 (default: the agnhost image, which has them)")
    group.addoption("--image-registry", metavar="HOST/PATH",
                    help="pull every image from this registry instead: the image's registry "
                         "host is replaced, its path kept (`packetwalk images` lists them)")
    group.addoption("--node-selector", action="append", default=[], metavar="KEY=VALUE",
                    help="place the run only on nodes with this label (repeatable); "
                         "kubernetes.io/os=linux always applies")
    group.addoption("--toleration", action="append", default=[], metavar="KEY[=VALUE]:EFFECT",
                    help="tolerate this taint, so tainted nodes of a pool can be used (repeatable)")
    group.addoption("--no-host-network", action="store_true",
                    help="plan no hostNetwork pods (no privileged namespace): the pod<->node "
                         "tests skip")
    group.addoption("--load-balancer", action="store_true",
                    help="create a Service of type LoadBalancer for test_load_balancer (it may "
                         "get a public address; see --service-annotation)")
    group.addoption("--ingress", action="store_true",
                    help="create an Ingress for test_ingress (the ingress controller may expose "
                         "it publicly)")
    group.addoption("--service-annotation", action="append", default=[], metavar="KEY=VALUE",
                    help="an annotation on the LoadBalancer Service and the Ingress, e.g. to "
                         "make the load balancer internal (repeatable)")
    group.addoption("--external-target", action="append", default=[], metavar="HOST:PORT",
                    help="an HTTP server outside the cluster whose /clientip answers with "
                         "the client's ip:port, for egress tests; one per IP family, repeat it "
                         "for the other ([2001:db8::10]:80 for IPv6). Default on the lab: its "
                         "outside host in each family it has; elsewhere none, and a family's "
                         "egress tests skip without one")
    group.addoption("--expected-source-ips", metavar="IP[,IP]",
                    help="the addresses the external target may see for egress, of either "
                         "family: each family's egress test expects those of its family "
                         "(default: the lab's egress NAT for the family, else the client "
                         "node's InternalIP in it)")
    group.addoption("--vantage", choices=("auto", "local"), default="auto",
                    help="where north-south probes start: auto = the lab's outside host "
                         "when testing the lab, else here; local = always here")
    watch = parser.getgroup("packetwalk-watch", "packetwalk: watch while the cluster changes")
    watch.addoption("--during", metavar="CMD",
                    help="deploy, then probe every watched cell (PodIP, ClusterIP, NodePort) "
                         "5 times a second from inside its client pod while CMD runs (in "
                         "bash) and for --settle after; each cell fails on an outage longer "
                         "than --max-outage or when broken at the end")
    watch.addoption("--settle", metavar="DURATION",
                    help=f"with --during: keep probing this long after CMD ends (default "
                         f"{DEFAULT_SETTLE:g}s)")
    watch.addoption("--max-outage", metavar="DURATION",
                    help=f"with --during: the longest outage a cell may show (default "
                         f"{DEFAULT_MAX_OUTAGE:g}s)")
    report = parser.getgroup("packetwalk-report", "packetwalk: report")
    report.addoption("--results-json", metavar="FILE",
                     help="write id, outcome, class and latency of every test as JSON "
                          "(default with --html: the same path ending in .json)")
    report.addoption("--baseline", metavar="FILE",
                     help="an earlier results JSON: list new failures, fixed tests and "
                          "latency regressions in the report and the terminal summary")


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    context: str | None = None
    image: str = DEFAULT_IMAGE
    image_pull_secret: str | None = None
    nodes: tuple[str, ...] | None = None
    keep: bool = False
    wait_cleanup: bool = False
    ready_timeout: float = 120
    attempts: int = DEFAULT_ATTEMPTS
    policy_timeout: float = DEFAULT_POLICY_TIMEOUT
    ip_family: str = AUTO  # --ip-family: auto, ipv4, ipv6, dual (families.walk)
    no_diagnose: bool = False
    capture_packets: bool = False
    debug_image: str = DEFAULT_IMAGE
    # --external-target, at most one per family; the lab's defaults come later (fixtures/outside.py).
    external_targets: tuple[ExternalTarget, ...] = ()
    expected_source_ips: tuple[str, ...] | None = None
    vantage: str = "auto"
    html: str | None = None  # pytest-html's --html
    results_json: str | None = None  # --results-json, else --html's path ending in .json
    baseline: str | None = None
    image_registry: str | None = None
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    host_network: bool = True  # --no-host-network: False
    load_balancer: bool = False
    ingress: bool = False
    service_annotations: tuple[tuple[str, str], ...] = ()
    during: str | None = None  # --during CMD: a watch (watch.py) instead of one probe per cell
    settle: float = DEFAULT_SETTLE
    max_outage: float = DEFAULT_MAX_OUTAGE

    @property
    def pod_image(self) -> str:
        """--image, from --image-registry if given."""
        return mirrored(self.image, self.image_registry)

    @property
    def capture_image(self) -> str:
        """--debug-image, from --image-registry if given."""
        return mirrored(self.debug_image, self.image_registry)

    @property
    def pool(self) -> NodePool:
        return NodePool(self.node_selector, self.tolerations)

    @property
    def exposure(self) -> Exposure:
        return Exposure(self.load_balancer, self.ingress, self.service_annotations)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> Options:
        return replace(Options(**data),
                       external_targets=tuple(ExternalTarget(**t) for t in data["external_targets"]),
                       nodes=_tuple(data["nodes"]),
                       expected_source_ips=_tuple(data["expected_source_ips"]),
                       node_selector=_pairs(data["node_selector"]),
                       tolerations=tuple(Toleration(**t) for t in data["tolerations"]),
                       service_annotations=_pairs(data["service_annotations"]))


def _pairs(value: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((key, val) for key, val in value)


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


def asked(config: pytest.Config) -> bool:
    """Whether this run asked for packetwalk: --packetwalk, `packetwalk = true` in the ini
    file, or a conftest.py on the run's paths that sets `packetwalk = True` (the initial
    conftests, loaded before pytest_configure: those of the paths on the command line)."""
    return (config.getoption("packetwalk") or config.getini(ASK)
            or any(getattr(plugin, ASK, None) is True
                   for plugin in config.pluginmanager.get_plugins()))


def parse(config: pytest.Config) -> Options:
    """The run's options, validated; pytest.UsageError (one line) on a bad value."""
    try:
        return _parse(config.getoption, getattr(config.option, "htmlpath", None))
    except ValueError as exc:
        raise pytest.UsageError(f"packetwalk: {exc}") from None


def _parse(get, html: str | None) -> Options:
    nodes = get("nodes")
    names = tuple(name.strip() for name in nodes.split(",")) if nodes else None
    if names is not None and not all(names):
        raise ValueError(f"--nodes {nodes!r}: expected node names separated by commas")
    timeout = get("ready_timeout")
    if timeout <= 0:
        raise ValueError(f"--ready-timeout {timeout:g}: must be more than 0 seconds")
    attempts = get("attempts")
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"--attempts {attempts}: must be 1 to {MAX_ATTEMPTS}")
    policy_timeout = get("policy_timeout")
    if policy_timeout <= 0:
        raise ValueError(f"--policy-timeout {policy_timeout:g}: must be more than 0 seconds")
    during, settle, max_outage = get("during"), get("settle"), get("max_outage")
    if during is not None and not during.strip():
        raise ValueError(f"--during {during!r}: expected a command")
    for option, given in (("--settle", settle), ("--max-outage", max_outage)):
        if given is not None and during is None:
            raise ValueError(f"{option} {given}: only with --during CMD")
    explicit = get("results_json")
    registry = get("image_registry")
    return Options(
        kubeconfig=get("kubeconfig"), context=get("context"), image=get("image"),
        image_pull_secret=get("image_pull_secret"), nodes=names, keep=get("keep"),
        wait_cleanup=get("wait_cleanup"), ready_timeout=timeout, attempts=attempts,
        policy_timeout=policy_timeout,
        ip_family=get("ip_family"),
        no_diagnose=get("no_diagnose"), capture_packets=get("capture_packets"),
        debug_image=get("debug_image"),
        external_targets=parse_targets(get("external_target") or ()),
        expected_source_ips=parse_ip_list(get("expected_source_ips")),
        vantage=get("vantage"), html=html,
        results_json=explicit or (str(Path(html).with_suffix(".json")) if html else None),
        baseline=get("baseline"),
        image_registry=check_registry(registry) if registry is not None else None,
        node_selector=tuple(parse_key_value("--node-selector", v, label=True)
                            for v in get("node_selector")),
        tolerations=tuple(parse_toleration(v) for v in get("toleration")),
        host_network=not get("no_host_network"), load_balancer=get("load_balancer"),
        ingress=get("ingress"),
        service_annotations=tuple(parse_key_value("--service-annotation", v, label=False)
                                  for v in get("service_annotation")),
        during=during,
        settle=parse_duration("--settle", settle) if settle is not None else DEFAULT_SETTLE,
        max_outage=(parse_duration("--max-outage", max_outage) if max_outage is not None
                    else DEFAULT_MAX_OUTAGE))
