"""Build the lab's upstream components from the Go module proxy.

Each component is built once and reused while its pinned version and our
Go sources are unchanged (a stamp file beside the binaries records both).
"""

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import paths, versions
from .errors import LabError

STATIC = "-s -w"


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    outputs: tuple[str, ...]
    build: Callable[["Component"], None]
    flags: str = ""  # build flags that change the binary; in the stamp only when set

    def stamp(self) -> str:
        src = paths.GO_SOURCES / self.name
        digest = hashlib.sha256(self.version.encode())
        if self.flags:
            digest.update(self.flags.encode())
        if src.is_dir():
            for f in sorted(src.iterdir()):
                digest.update(f.name.encode() + f.read_bytes())
        return digest.hexdigest()[:16]

    def stamp_file(self) -> Path:
        return paths.BIN_DIR / f".{self.name}.stamp"

    def is_current(self) -> bool:
        stamp = self.stamp_file()
        return (
            all((paths.BIN_DIR / o).exists() for o in self.outputs)
            and stamp.exists()
            and stamp.read_text() == self.stamp()
        )


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOCACHE=str(paths.GOCACHE),
        GOMODCACHE=str(paths.GOMODCACHE),
        GOBIN=str(paths.BIN_DIR),
        GOFLAGS="-buildvcs=false",
        CGO_ENABLED="0",
        GOTOOLCHAIN="local",
    )
    return env


def go(args: list[str], cwd: Path | None = None, what: str = "", cgo: bool = False) -> None:
    log = paths.BUILD_DIR / "build.log"
    with log.open("a") as out:
        out.write(f"\n$ (cd {cwd}) go {' '.join(args)}\n")
        out.flush()
        env = {**go_env(), "CGO_ENABLED": "1" if cgo else "0"}
        result = subprocess.run(["go", *args], cwd=cwd, env=env, stdout=out, stderr=out, check=False)
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise LabError(f"building {what or args[-1]} failed: {tail[0]} (full log: {log})")


def wrapper_module(name: str, requires: dict[str, str], extra: str = "") -> Path:
    """A module of our own whose main imports upstream; see the notes on replace lines."""
    work = paths.BUILD_DIR / name
    work.mkdir(parents=True, exist_ok=True)
    for src in (paths.GO_SOURCES / name).glob("*.go"):
        shutil.copy(src, work / src.name)
    lines = [f"module packetwalk.local/lab/{name}", "", "go 1.26.0", "", "require ("]
    lines += [f"\t{mod} {ver}" for mod, ver in requires.items()]
    lines += [")", "", extra]
    gomod = work / "go.mod"
    if not gomod.exists() or gomod.read_text() != "\n".join(lines):
        gomod.write_text("\n".join(lines))
        go(["mod", "tidy"], cwd=work, what=f"{name} (go mod tidy)")
    return work


def kubernetes_staging_replaces(version: str) -> str:
    """k8s.io/kubernetes points its staging modules at ./staging, which Go ignores
    in a dependency; pin each to its published v0.x tag instead. The list comes
    from upstream's own go.mod, because new releases add modules."""
    go(["mod", "download", f"k8s.io/kubernetes@{version}"], what="k8s.io/kubernetes download")
    upstream = paths.GOMODCACHE / "cache/download/k8s.io/kubernetes/@v" / f"{version}.mod"
    staged = re.findall(r"^\s+(k8s\.io/\S+) => \./staging/", upstream.read_text(), re.MULTILINE)
    if not staged:
        raise LabError(f"found no staging modules in {upstream}; has upstream's layout changed?")
    v0 = versions.staging_version(version)
    return "replace (\n" + "".join(f"\t{m} => {m} {v0}\n" for m in staged) + ")\n"


def version_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = []
    # Without these the server reports v0.0.0-master and kubectl warns about skew.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def build_kube(c: Component) -> None:
    extra = "tool k8s.io/kubernetes/test/images/agnhost\n\n" + kubernetes_staging_replaces(c.version)
    work = wrapper_module("kube", {"k8s.io/kubernetes": c.version}, extra)
    ld = f"{STATIC} {version_ldflags(c.version)}"
    go(["build", "-trimpath", "-ldflags", ld, "-o", str(paths.BIN_DIR / "kube"), "."], work, "kube")
    go(
        ["build", "-trimpath", "-ldflags", STATIC, "-o", str(paths.BIN_DIR / "agnhost"),
         "k8s.io/kubernetes/test/images/agnhost"],
        work,
        "agnhost",
    )
    for tool in ("kubectl",):
        link = paths.BIN_DIR / tool
        link.unlink(missing_ok=True)
        link.symlink_to("kube")


def build_etcd(c: Component) -> None:
    mods = ("server/v3", "api/v3", "client/pkg/v3", "client/v3", "pkg/v3")
    # etcd's server module replaces its siblings with ../ paths; require them all at one tag.
    work = wrapper_module("etcd", {f"go.etcd.io/etcd/{m}": c.version for m in mods})
    go(["build", "-trimpath", "-ldflags", STATIC, "-o", str(paths.BIN_DIR / "etcd"), "."], work)


def build_pause(c: Component) -> None:
    work = wrapper_module("pause", {})
    go(["build", "-trimpath", "-ldflags", STATIC, "-o", str(paths.BIN_DIR / "pause"), "."], work)


FLANNEL = "github.com/flannel-io/flannel"
# flannel v0.28.4 requires tencentcloud-sdk-go common v1.3.79 (for its tencentvpc
# backend, linked in though the lab never uses it), which the module proxy refuses
# (403 "not available"); the nearest newer version it serves is required instead.
# v0.28.10 requires v1.3.190 itself, which Go's version selection keeps.
FLANNEL_BUMPS = {"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common": "v1.3.103"}
# v0.28.10 requires tencentcloud-sdk-go's vpc module at v1.3.188, whose zip the proxy
# refuses (403; no vpc version from v1.3.0 up is served, checked one by one). The
# backend that imports it is linked in but never used by the lab (VXLAN): pin the
# vpc module to v1.3.75, the one v0.28.4 requires and the proxy serves. flanneld
# v0.28.10 then builds; its tencentvpc backend compiles against that older API.
FLANNEL_REPLACES = "replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => " \
                   "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.75\n"


def build_flannel(c: Component) -> None:
    """flanneld is the module's root package; `go install` would name it `flannel`,
    so a wrapper module requires it as a tool and `go build -o` names it as the
    DaemonSet's image does. On amd64 it needs cgo: the UDP backend, linked in
    unconditionally, is C there (upstream's Makefile turns cgo on for amd64 too)."""
    work = wrapper_module(c.name, {FLANNEL: c.version, **FLANNEL_BUMPS}, f"tool {FLANNEL}\n" + FLANNEL_REPLACES)
    ld = f"{STATIC} -X {FLANNEL}/pkg/version.Version={c.version}"
    go(["build", "-trimpath", "-ldflags", ld, "-o", str(paths.BIN_DIR / c.outputs[0]), FLANNEL], work,
       c.name, cgo=True)


CILIUM = "github.com/cilium/cilium"
# v1.20.2 requires two module versions the proxy refuses (403 "not available"; the
# spike's build1.log): gobgp/v4 at a pseudo-version, replaced by v4.7.0, the nearest
# tag it serves (the spike built and ran the agent with it); and
# sigs.k8s.io/mcs-api/controllers v0.5.2, of which Cilium uses one constant
# (pkg/clustermesh/mcsapi): a stub module of ours with that constant stands in.
CILIUM_MCS_STUB = "cilium-mcs-controllers"  # under BUILD_DIR
CILIUM_MCS_STUB_GO = """// Package controllers stands in for sigs.k8s.io/mcs-api/controllers v0.5.2,
// which the Go module proxy does not serve. Cilium v1.20.2 uses only this constant.
package controllers

const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"
"""
CILIUM_MCS_STUB_MOD = "module sigs.k8s.io/mcs-api/controllers\n\ngo 1.24\n"
CILIUM_GOBGP = "v4.7.0"
# (output, package, build tags): the operator's generic flavour is built with the
# IPAM providers it would be released with (upstream's operator Makefile).
CILIUM_BINARIES = (
    ("cilium-agent", "daemon", "osusergo"),
    ("cilium-cni", "plugins/cilium-cni", "osusergo"),
    ("cilium-operator-generic", "operator", "osusergo,ipam_provider_operator"),
)
# The agent compiles its datapath at run time (clang) from the C sources in
# <lib-dir>/bpf; they ship in the module, copied here beside the binaries.
CILIUM_LIB = "cilium-lib"


def cilium_ldflags(version: str) -> str:
    return f"{STATIC} -X {CILIUM}/pkg/version.ciliumVersion={version.removeprefix('v')}"


def cilium_replaces(stub: Path) -> str:
    return (f"replace github.com/osrg/gobgp/v4 => github.com/osrg/gobgp/v4 {CILIUM_GOBGP}\n"
            f"replace sigs.k8s.io/mcs-api/controllers => {stub}\n")


def _write_mcs_stub() -> Path:
    stub = paths.BUILD_DIR / CILIUM_MCS_STUB
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "go.mod").write_text(CILIUM_MCS_STUB_MOD)
    (stub / "controllers.go").write_text(CILIUM_MCS_STUB_GO)
    return stub


def build_cilium(c: Component) -> None:
    """The agent, its CNI plugin and the operator, from a wrapper module that
    requires Cilium and names each as a tool (`go install` would call the agent
    `daemon`); then the datapath's C sources from the module cache."""
    stub = _write_mcs_stub()
    tools = "".join(f"tool {CILIUM}/{pkg}\n" for _, pkg, _ in CILIUM_BINARIES)
    work = wrapper_module(c.name, {CILIUM: c.version}, tools + cilium_replaces(stub))
    for out, pkg, tags in CILIUM_BINARIES:
        go(["build", "-trimpath", "-tags", tags, "-ldflags", cilium_ldflags(c.version),
            "-o", str(paths.BIN_DIR / out), f"{CILIUM}/{pkg}"], work, out)
    src = paths.GOMODCACHE / f"{CILIUM}@{c.version}" / "bpf"
    if not src.is_dir():
        raise LabError(f"no datapath sources at {src}: has the module's layout changed?")
    lib = paths.BIN_DIR / CILIUM_LIB
    shutil.rmtree(lib, ignore_errors=True)
    # Plain file copies: the module cache's files are read-only, these need not be.
    shutil.copytree(src, lib / "bpf", copy_function=shutil.copyfile)


def go_install(pkgs: list[str], ldflags: str = STATIC, tags: str = "", cgo: bool = False
               ) -> Callable[[Component], None]:
    def build(c: Component) -> None:
        args = ["install", "-trimpath", "-ldflags", ldflags]
        if tags:
            args += ["-tags", tags]
        go(args + [f"{p}@{c.version}" for p in pkgs], what=c.name, cgo=cgo)

    return build


CONTAINERD = "github.com/containerd/containerd/v2"
KUBE_ROUTER = "github.com/cloudnativelabs/kube-router/v2"
# The version its metrics report (kube_router_build_info), as upstream's Makefile sets it.
KUBE_ROUTER_LDFLAGS = f"{STATIC} -X {KUBE_ROUTER}/pkg/version.Version={versions.KUBE_ROUTER}"

COMPONENTS = (
    Component("pause", "1", ("pause",), build_pause),
    Component("etcd", versions.ETCD, ("etcd",), build_etcd),
    Component(
        "containerd",
        versions.CONTAINERD,
        ("containerd", "ctr", "containerd-shim-runc-v2"),
        go_install(
            [f"{CONTAINERD}/cmd/{c}" for c in ("containerd", "ctr", "containerd-shim-runc-v2")],
            ldflags=f"{STATIC} -X {CONTAINERD}/version.Version={versions.CONTAINERD}",
            tags="no_btrfs,no_devmapper",
        ),
    ),
    # Debian's runc 1.1.5 fails under containerd 2.4 ("can't get final child's
    # PID from pipe"); containerd pins runc in script/setup/runc-version. runc's
    # nsenter is C, so this one build needs cgo (and libseccomp-dev).
    Component(
        "runc", versions.RUNC, ("runc",),
        go_install(["github.com/opencontainers/runc"], tags="seccomp", cgo=True,
                   ldflags=f"{STATIC} -X main.version={versions.RUNC.removeprefix('v')}"),
    ),
    Component("coredns", versions.COREDNS, ("coredns",), go_install(["github.com/coredns/coredns"])),
    Component(
        "kube-router",
        versions.KUBE_ROUTER,
        ("kube-router",),
        go_install([f"{KUBE_ROUTER}/cmd/kube-router"], ldflags=KUBE_ROUTER_LDFLAGS),
        flags=KUBE_ROUTER_LDFLAGS,
    ),
    Component("flannel", versions.FLANNEL, ("flanneld",), build_flannel),
    Component("cilium", versions.CILIUM, (*(o for o, _, _ in CILIUM_BINARIES), CILIUM_LIB), build_cilium,
              flags=" ".join([cilium_ldflags(versions.CILIUM), CILIUM_GOBGP, CILIUM_MCS_STUB_GO,
                              *(t for _, _, t in CILIUM_BINARIES)])),
    Component("kube", versions.KUBERNETES, ("kube", "agnhost", "kubectl"), build_kube),
)
# Built only for a CNI that names them in its `builds` (cni/).
FOR_CNI = frozenset({"kube-router", "flannel", "cilium"})


def flannel_at(version: str) -> Component:
    """flanneld at `version`: the pinned one is COMPONENTS' own; another (an upgrade's
    target) is built beside it as flanneld-<version>, so both stay on disk."""
    if version == versions.FLANNEL:
        return next(c for c in COMPONENTS if c.name == "flannel")
    return Component(f"flannel-{version}", version, (f"flanneld-{version}",), build_flannel)


def _ready_to_build() -> None:
    if shutil.which("go") is None:
        raise LabError("Go is not installed; the lab builds its components from source")
    for d in (paths.BIN_DIR, paths.BUILD_DIR, paths.GOCACHE, paths.GOMODCACHE):
        d.mkdir(parents=True, exist_ok=True)


def build_one(c: Component, log: Callable[[str], None] = print) -> float | None:
    """Build `c` if missing or stale; the seconds it took, None when it was current."""
    if c.is_current():
        return None
    _ready_to_build()
    log(f"building {c.name} {c.version} (log: {paths.BUILD_DIR / 'build.log'})")
    start = time.monotonic()
    c.build(c)
    c.stamp_file().write_text(c.stamp())
    return time.monotonic() - start


def build_all(log: Callable[[str], None] = print,
              cni_builds: Iterable[str] = FOR_CNI) -> dict[str, float]:
    """Build what is missing or stale (of FOR_CNI, only `cni_builds`, by default
    all of them); returns seconds spent per component."""
    _ready_to_build()
    spent = {}
    for c in COMPONENTS:
        if c.name in FOR_CNI and c.name not in cni_builds:
            continue
        took = build_one(c, log)
        if took is not None:
            spent[c.name] = took
    return spent
