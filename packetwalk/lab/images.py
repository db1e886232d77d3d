"""Container images for the lab, built without Docker or a registry.

Each image is one layer made from a root filesystem assembled in a temp dir and
written as a docker-archive tarball (the `docker save` format), which
`ctr -n k8s.io images import --platform linux/amd64 FILE` accepts. Output is
deterministic: the same inputs give byte-identical tarballs and so the same
image id.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packetwalk.lab.errors import LabError
from packetwalk.lab.versions import AGNHOST_IMAGE, COREDNS_IMAGE, PAUSE_IMAGE

# Bump when the tar writing or file handling changes; rootfs contents are in the stamp already.
SPEC_VERSION = "1"

DEFAULT_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
# Where Debian puts its tools; fixed so neither $PATH nor /usr/local can change the image.
_HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class HostTool:
    """A Debian binary copied into the tools image with its shared libraries."""

    name: str  # command looked up on the host
    package: str  # Debian package named in the error when it is missing
    dest: str  # absolute path inside the image
    aliases: tuple[str, ...] = ()  # extra paths symlinked to dest
    optional: bool = False


@dataclass(frozen=True)
class ImageSpec:
    """One catalogue entry: an upstream image name and what goes into it."""

    name: str  # full reference with an explicit tag
    binary: str  # file in bin_dir, installed as /<binary>
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] | None = None
    etc: bool = False  # minimal /etc (passwd, group, nsswitch.conf) and /tmp
    tools: bool = False  # busybox applets and Debian network tools (implies etc)
    agnhost: bool = False  # what upstream's agnhost Dockerfile adds besides the binary

    @property
    def filename(self) -> str:
        """Tarball name, e.g. `agnhost-2.66.1.tar`."""
        repo, tag = _split_ref(self.name)
        return f"{repo.rsplit('/', 1)[-1]}-{tag}.tar"


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(PAUSE_IMAGE, "pause", ("/pause",)),
    ImageSpec(COREDNS_IMAGE, "coredns", ("/coredns",), etc=True),
    ImageSpec(AGNHOST_IMAGE, "agnhost", ("/agnhost",), ("pause",), etc=True, tools=True, agnhost=True),
)

# Real tools beat busybox applets of the same name: iproute2's ip and OpenBSD nc
# understand the flags tests use (busybox nc has no -u or -z).
# /bin/sh is dash, not busybox: Debian's busybox-static is built "standalone", so
# its sh runs its own applets before $PATH whenever /proc is mounted (always, in a
# container), and `sh -c 'nc ...'` would get busybox nc instead of the real one.
TOOLS: tuple[HostTool, ...] = (
    HostTool("dash", "dash", "/usr/bin/dash", aliases=("/usr/bin/sh",)),
    HostTool("bash", "bash", "/usr/bin/bash"),
    HostTool("dig", "bind9-dnsutils", "/usr/bin/dig"),
    HostTool("curl", "curl", "/usr/bin/curl"),
    HostTool("ip", "iproute2", "/usr/bin/ip", aliases=("/usr/sbin/ip",)),
    HostTool("tcpdump", "tcpdump", "/usr/bin/tcpdump"),
    HostTool("conntrack", "conntrack", "/usr/sbin/conntrack", optional=True),
    HostTool("nc.openbsd", "netcat-openbsd", "/usr/bin/nc", optional=True),
    # The run's servers answer probes through socat (manifests/answer.sh), as
    # upstream's agnhost image can: its Dockerfile adds socat.
    HostTool("socat", "socat", "/usr/bin/socat"),
    # The host's own flavour (nft or legacy) of the multi-call binary: the debug pod
    # must read the rules kube-proxy wrote with it. It picks its mode from argv[0].
    HostTool("iptables-save", "iptables", "/usr/sbin/iptables-save",
             aliases=("/usr/sbin/iptables",), optional=True),
    # kube-proxy's nftables mode keeps its rules in `table ip kube-proxy`, which only nft reads.
    HostTool("nft", "nftables", "/usr/sbin/nft", optional=True),
)
# iptables loads its match and target extensions from here at run time (dlopen):
# without them iptables-save cannot print kube-proxy's rules.
XTABLES_DIRS = ("/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/aarch64-linux-gnu/xtables")
BUSYBOX = HostTool("busybox", "busybox-static", "/usr/bin/busybox")
REQUIRED_APPLETS = (
    "sh", "ls", "cat", "echo", "sleep", "nc", "wget", "ping", "nslookup", "hostname",
    "grep", "sed", "awk", "head", "tail", "env", "ps", "kill", "mkdir", "rm", "cp", "mv",
    "tr", "wc", "timeout", "date", "id", "uname", "true", "false", "test",
)  # fmt: skip
# The tools image is merged-/usr like Debian, so /bin/sh, /sbin/ip and the
# /lib paths ldd prints all resolve.
_MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}

# nonroot (65532) matches the distroless base upstream's coredns image uses.
_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = "root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n"
# Debian's tcpdump drops privileges to user tcpdump after opening the capture.
_TOOLS_PASSWD = _PASSWD + "tcpdump:x:102:105::/nonexistent:/bin/false\n"
_TOOLS_GROUP = _GROUP + "tcpdump:x:105:\n"
# upstream's agnhost Dockerfile: `adduser -u 1000 -D user-defined-in-image`, `addgroup -g
# 50000 group-defined-in-image`, the user in that group (a SupplementalGroups e2e test).
_AGNHOST_PASSWD = "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"
_AGNHOST_GROUP = "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"
# agnhost's porter serves TLS with these, from its working directory (/).
PORTER_TLS = ("localhost.crt", "localhost.key")
PORTER_TLS_DAYS = "36500"  # upstream's pair expires in 2084: a lab's outlives any run
_NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"
_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _split_ref(name: str) -> tuple[str, str]:
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag or not tag:
        raise LabError(f"Image name {name!r} needs an explicit tag.")
    if tag == "latest":
        raise LabError(f"Image name {name!r} must pin a version, not :latest.")
    return repo, tag


# ---------------------------------------------------------------- archive


def _layer_entries(rootfs: Path) -> list[tarfile.TarInfo]:
    """Tar headers for everything under rootfs: parents first, names sorted, owner root, mtime 0."""
    entries: list[tarfile.TarInfo] = []

    def walk(directory: Path, prefix: str) -> None:
        for name in sorted(os.listdir(directory)):
            path = directory / name
            st = path.lstat()
            info = tarfile.TarInfo(prefix + name)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                entries.append(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                entries.append(info)
                walk(path, info.name + "/")
            elif stat.S_ISREG(st.st_mode):
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                entries.append(info)
            else:
                raise LabError(f"{path} is not a file, directory or symlink; images can't hold it.")

    walk(rootfs, "")
    return entries


def _write_layer(rootfs: Path, fileobj: io.BufferedIOBase) -> None:
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in _layer_entries(rootfs):
            if info.isreg():
                with open(rootfs / info.name, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def _outer_info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info


def write_docker_archive(
    rootfs: Path,
    name: str,
    out: Path,
    entrypoint: list[str],
    cmd: list[str] | None = None,
    env: list[str] | None = None,
) -> None:
    """Write rootfs as a one-layer docker-archive tarball tagged `name` at `out` (atomically)."""
    _split_ref(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out.parent) as layer:
        _write_layer(rootfs, layer)
        layer_size = layer.tell()
        layer.seek(0)
        digest = hashlib.sha256()
        while chunk := layer.read(1 << 20):
            digest.update(chunk)
        diff_id = digest.hexdigest()  # uncompressed layer, so its digest is also its diff_id

        container_config: dict[str, object] = {
            "Entrypoint": list(entrypoint),
            "Env": list(env if env is not None else DEFAULT_ENV),
            "WorkingDir": "/",
        }
        if cmd is not None:
            container_config["Cmd"] = list(cmd)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": _EPOCH,
            "config": container_config,
            "history": [{"created": _EPOCH, "created_by": "packetwalk lab images.py"}],
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"  # the image id
        layer_name = f"{diff_id}/layer.tar"
        manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()

        tmp = out.with_name(out.name + ".tmp")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_outer_info(diff_id, directory=True))
            layer.seek(0)
            tar.addfile(_outer_info(layer_name, layer_size), layer)
            tar.addfile(_outer_info(config_name, len(config_bytes)), io.BytesIO(config_bytes))
            tar.addfile(
                _outer_info("manifest.json", len(manifest_bytes)), io.BytesIO(manifest_bytes)
            )
    os.replace(tmp, out)


# ---------------------------------------------------------------- rootfs plan


@dataclass
class _Plan:
    """Everything that goes into a rootfs, decided before copying; it also keys the stamp."""

    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    files: dict[str, Path] = field(default_factory=dict)  # path -> host source
    texts: dict[str, str] = field(default_factory=dict)  # path -> content
    links: dict[str, str] = field(default_factory=dict)  # path -> symlink target
    merged: bool = False

    def canon(self, path: str) -> str:
        """Image path without leading slash, through the merged-/usr symlinks."""
        rel = path.lstrip("/")
        if self.merged:
            top, sep, rest = rel.partition("/")
            if top in _MERGED:
                rel = _MERGED[top] + sep + rest
        return rel

    def taken(self, path: str) -> bool:
        rel = self.canon(path)
        return rel in self.files or rel in self.texts or rel in self.links or rel in self.dirs

    def add_file(self, path: str, src: Path) -> None:
        self.files.setdefault(self.canon(path), src)

    def add_link(self, path: str, target: str) -> None:
        self.links[self.canon(path)] = target


def _relative_link(path: str, target: str) -> str:
    # Relative so the link never points out of a rootfs being built on the host.
    return os.path.relpath("/" + target, os.path.dirname("/" + path))


def _require_static(path: Path, fix: str) -> None:
    """Refuse a dynamic binary: we copy no loader or libs for it, and it would fail with ENOENT."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise LabError(f"{path} is not a 64-bit little-endian ELF executable.")
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if struct.unpack_from("<I", table, i * phentsize)[0] == 3:  # PT_INTERP
            raise LabError(f"{path} is dynamically linked; {fix}.")


def _find_tool(tool: HostTool) -> Path | None:
    found = shutil.which(tool.name, path=_HOST_PATH)
    if found is None:
        if tool.optional:
            return None
        raise LabError(
            f"{tool.name} is not installed on this host; install the Debian package {tool.package}."
        )
    return Path(found)


def _shared_libs(binary: Path) -> list[str]:
    """Absolute paths of the libraries and loader `ldd` resolves for binary."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if "not a dynamic executable" in result.stdout + result.stderr:
        return []
    if result.returncode != 0:
        raise LabError(f"ldd {binary} failed: {result.stderr.strip() or result.stdout.strip()}")
    libs = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise LabError(f"{binary} needs {line.split()[0]}, which this host lacks.")
        if "=>" in line:
            path = line.split("=>", 1)[1].split("(")[0].strip()
        else:
            path = line.split("(")[0].strip()
        if path.startswith("/"):  # skips linux-vdso, which the kernel provides
            libs.append(path)
    return libs


def _busybox_applets(busybox: Path) -> list[str]:
    result = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=False
    )
    applets = result.stdout.split()
    if result.returncode != 0 or not applets:
        raise LabError(
            f"{busybox} --list-full failed; reinstall the Debian package busybox-static."
        )
    missing = sorted(set(REQUIRED_APPLETS) - {a.rsplit("/", 1)[-1] for a in applets})
    if missing:
        raise LabError(f"{busybox} lacks applets {', '.join(missing)}; install busybox-static.")
    return applets


def _plan(spec: ImageSpec, bin_dir: Path) -> _Plan:
    plan = _Plan(merged=spec.tools)
    binary = bin_dir / spec.binary
    if not binary.is_file():
        raise LabError(f"{binary} is missing; build the lab's Go binaries first.")
    _require_static(binary, "build it with CGO_ENABLED=0")
    plan.add_file("/" + spec.binary, binary)
    if spec.etc or spec.tools:
        plan.dirs["tmp"] = 0o1777
        plan.dirs["etc"] = 0o755
        plan.texts["etc/passwd"] = _TOOLS_PASSWD if spec.tools else _PASSWD
        plan.texts["etc/group"] = _TOOLS_GROUP if spec.tools else _GROUP
        plan.texts["etc/nsswitch.conf"] = _NSSWITCH
    if not spec.tools:
        return plan

    for top, target in _MERGED.items():
        plan.links[top] = target
        plan.dirs[target] = 0o755
    plan.dirs["root"] = 0o700
    plan.texts["etc/hosts"] = _HOSTS  # kubelet mounts its own; this serves plain runs
    for extra in ("/etc/services", "/etc/protocols"):  # from netbase; names for ports
        if os.path.isfile(extra):
            plan.add_file(extra, Path(extra))

    real: set[str] = set()  # command names whose busybox applet a real tool replaces
    for tool in TOOLS:
        host = _find_tool(tool)
        if host is None:
            continue
        real.update(Path(p).name for p in (tool.dest, *tool.aliases))
        plan.add_file(tool.dest, host)
        for alias in tool.aliases:
            plan.add_link(alias, _relative_link(plan.canon(alias), plan.canon(tool.dest)))
        for lib in _shared_libs(host):
            plan.add_file(lib, Path(lib))

    if "iptables-save" in real:
        for extensions in (Path(d) for d in XTABLES_DIRS if os.path.isdir(d)):
            for extension in sorted(extensions.glob("*.so")):
                plan.add_file(str(extension), extension)
                for lib in _shared_libs(extension):
                    plan.add_file(lib, Path(lib))

    busybox = _find_tool(BUSYBOX)
    assert busybox is not None
    _require_static(busybox, "install the Debian package busybox-static")
    plan.add_file(BUSYBOX.dest, busybox)
    for applet in _busybox_applets(busybox):
        # Skip applets outside the bin dirs (busybox's /linuxrc) and those a real tool owns.
        if not applet.startswith(("bin/", "sbin/", "usr/bin/", "usr/sbin/")):
            continue
        if Path(applet).name in real or plan.taken(applet):
            continue
        plan.add_link(applet, _relative_link(plan.canon(applet), plan.canon(BUSYBOX.dest)))
    return plan


def porter_tls(out_dir: Path) -> dict[str, Path]:
    """A self-signed certificate and key for "localhost", made once under out_dir and
    kept: a new pair on every build would rebuild the image every time."""
    d = out_dir / "agnhost-tls"
    crt, key = (d / name for name in PORTER_TLS)
    if not (crt.is_file() and key.is_file()):
        d.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(crt), "-days", PORTER_TLS_DAYS, "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
            capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise LabError(f"openssl could not make agnhost's localhost.crt: {r.stderr.strip()[-200:]}")
        # Readable by any user, as upstream's ADD leaves it: the suite's pods run as 65534.
        os.chmod(key, 0o644)
    return {crt.name: crt, key.name: key}


def add_agnhost_extras(plan: _Plan, tls: dict[str, Path]) -> None:
    """What upstream's agnhost Dockerfile adds beside the binary and the tools."""
    plan.dirs["uploads"] = 0o755  # netexec's /upload writes here
    plan.add_link("/agnhost-2", "agnhost")  # the entrypoint-tester tests run agnhost-2
    for name, src in tls.items():
        plan.add_file("/" + name, src)
    plan.texts["etc/passwd"] += _AGNHOST_PASSWD
    plan.texts["etc/group"] += _AGNHOST_GROUP


def _materialise(plan: _Plan, root: Path) -> None:
    """Create plan under root; every parent is a real dir, so nothing writes through a link."""
    paths = [*plan.dirs, *plan.files, *plan.texts, *plan.links]
    parents = {str(p) for rel in paths for p in Path(rel).parents if str(p) != "."}
    for rel in sorted(parents | set(plan.dirs)):
        if rel in plan.links:
            raise LabError(f"Image path /{rel} is both a symlink and a directory.")
        (root / rel).mkdir(exist_ok=True)
        os.chmod(root / rel, plan.dirs.get(rel, 0o755))
    for rel, src in plan.files.items():
        shutil.copyfile(src, root / rel)  # follows host symlinks, e.g. libfoo.so.1 -> .so.1.2
        # Keep exec bits, drop setuid and group/other write.
        os.chmod(root / rel, stat.S_IMODE(src.stat().st_mode) & 0o755)
    for rel, text in plan.texts.items():
        (root / rel).write_text(text)
        os.chmod(root / rel, 0o644)
    for rel, target in plan.links.items():
        os.symlink(target, root / rel)


def _stamp(spec: ImageSpec, plan: _Plan) -> str:
    def stat_of(p: Path) -> list[int]:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]

    key = {
        "version": SPEC_VERSION,
        # spec.agnhost is in the plan (its files, users, links): the other images keep their stamps.
        "spec": [spec.name, spec.binary, spec.entrypoint, spec.cmd, spec.etc, spec.tools],
        "dirs": plan.dirs,
        "files": {rel: [str(src), *stat_of(src)] for rel, src in plan.files.items()},
        "texts": plan.texts,
        "links": plan.links,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest() + "\n"


def build_image(spec: ImageSpec, bin_dir: Path, out_dir: Path) -> Path:
    """Build one image tarball unless its stamp shows the inputs are unchanged."""
    out = out_dir / spec.filename
    stamp_path = out.with_name(out.name + ".stamp")
    plan = _plan(spec, bin_dir)
    if spec.agnhost:
        add_agnhost_extras(plan, porter_tls(out_dir))
    stamp = _stamp(spec, plan)
    if out.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rootfs-", dir=out_dir) as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        _materialise(plan, root)
        write_docker_archive(
            root, spec.name, out, list(spec.entrypoint), list(spec.cmd) if spec.cmd else None
        )
    stamp_path.write_text(stamp)  # written last: a crash mid-build leaves a rebuild, not a lie
    return out


def build_all(bin_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Build every catalogue image into out_dir; returns image name -> tarball path."""
    return {spec.name: build_image(spec, bin_dir, out_dir) for spec in IMAGES}
