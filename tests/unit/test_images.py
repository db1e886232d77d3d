"""Docker-archive writing and image assembly, without Docker or a cluster."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from packetwalk.lab import images
from packetwalk.lab.errors import LabError

NAME = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"


def fake_elf(path: Path, interp: bool = False) -> Path:
    """A 64-bit ELF header with one program header: PT_INTERP if `interp`, else PT_LOAD."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 3 if interp else 1, 5, 0, 0, 0, 0, 0, 0)
    path.write_bytes(header + phdr + path.name.encode())
    path.chmod(0o755)
    return path


def make_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "bin" / "hello").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("hi\n")
    (root / "etc" / "motd").chmod(0o644)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    os.symlink("hello", root / "bin" / "sh")
    return root


def read_archive(path: Path) -> tuple[dict, dict, bytes, bytes]:
    """(manifest entry, config, raw config bytes, layer bytes) of a one-image archive."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert len(manifest) == 1
        entry = manifest[0]
        config_bytes = tar.extractfile(entry["Config"]).read()
        assert len(entry["Layers"]) == 1
        layer = tar.extractfile(entry["Layers"][0]).read()
    return entry, json.loads(config_bytes), config_bytes, layer


def test_manifest_config_and_diff_ids(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    out = tmp_path / "out" / "img.tar"
    images.write_docker_archive(root, NAME, out, ["/agnhost"], ["pause"], ["A=1"])

    entry, config, config_bytes, layer = read_archive(out)
    assert entry["RepoTags"] == [NAME]
    # The config's file name is the image id: the sha256 of its bytes.
    assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
    }
    assert config["architecture"] == "amd64"
    assert config["os"] == "linux"
    assert config["config"]["Entrypoint"] == ["/agnhost"]
    assert config["config"]["Cmd"] == ["pause"]
    assert config["config"]["Env"] == ["A=1"]
    assert config["config"]["WorkingDir"] == "/"
    assert not out.with_name("img.tar.tmp").exists()


def test_layer_entries(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    out = tmp_path / "img.tar"
    images.write_docker_archive(root, NAME, out, ["/bin/hello"])
    _, config, _, layer = read_archive(out)
    assert "Cmd" not in config["config"]
    assert config["config"]["Env"] == list(images.DEFAULT_ENV)

    layer_path = tmp_path / "layer.tar"
    layer_path.write_bytes(layer)
    with tarfile.open(layer_path) as tar:
        members = tar.getmembers()
        by_name = {m.name: m for m in members}
        assert [m.name for m in members] == [
            "bin", "bin/hello", "bin/sh", "etc", "etc/motd", "tmp",
        ]  # fmt: skip
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members)
        assert by_name["bin"].isdir() and by_name["bin"].mode == 0o755
        assert by_name["tmp"].isdir() and by_name["tmp"].mode == 0o1777
        assert by_name["bin/hello"].isreg() and by_name["bin/hello"].mode == 0o755
        assert by_name["etc/motd"].mode == 0o644
        assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "hello"
        assert tar.extractfile("etc/motd").read() == b"hi\n"


def test_same_inputs_give_identical_archives(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    images.write_docker_archive(root, NAME, first, ["/bin/hello"], ["x"])
    # Host mtimes must not leak into the image.
    os.utime(root / "etc" / "motd", (1_000_000, 1_000_000))
    images.write_docker_archive(root, NAME, second, ["/bin/hello"], ["x"])
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("name", ["registry.k8s.io/pause", "registry.k8s.io/pause:latest"])
def test_rejects_unpinned_names(tmp_path: Path, name: str) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    with pytest.raises(LabError):
        images.write_docker_archive(root, name, tmp_path / "x.tar", ["/bin/hello"])


def test_catalogue_names_are_pinned() -> None:
    from packetwalk.lab import versions

    assert [s.name for s in images.IMAGES] == [
        versions.PAUSE_IMAGE,
        versions.COREDNS_IMAGE,
        versions.AGNHOST_IMAGE,
    ]
    assert [s.filename for s in images.IMAGES] == [
        "pause-3.10.2.tar",
        "coredns-v1.14.6.tar",
        "agnhost-2.66.1.tar",
    ]


def test_build_image_is_incremental(tmp_path: Path) -> None:
    bin_dir, out_dir = tmp_path / "bin", tmp_path / "out"
    bin_dir.mkdir()
    fake_elf(bin_dir / "coredns")
    spec = images.IMAGES[1]

    out = images.build_image(spec, bin_dir, out_dir)
    before = out.stat()
    assert images.build_image(spec, bin_dir, out_dir) == out
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with tarfile.open(out) as tar:
        layer_name = json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]
        (tmp_path / "layer.tar").write_bytes(tar.extractfile(layer_name).read())
    with tarfile.open(tmp_path / "layer.tar") as layer:
        names = layer.getnames()
        assert {"coredns", "etc", "etc/passwd", "etc/group", "etc/nsswitch.conf", "tmp"} <= set(
            names
        )
        assert layer.getmember("tmp").mode == 0o1777
        assert b"hosts: files dns" in layer.extractfile("etc/nsswitch.conf").read()

    # A changed binary (new size and mtime) rebuilds: os.replace gives a new inode.
    with open(bin_dir / "coredns", "ab") as f:
        f.write(b"more")
    images.build_image(spec, bin_dir, out_dir)
    assert out.stat().st_ino != before.st_ino


def test_missing_binary_is_a_lab_error(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    with pytest.raises(LabError, match="pause is missing"):
        images.build_all(tmp_path / "bin", tmp_path / "out")


def test_dynamic_binary_is_a_lab_error(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    fake_elf(tmp_path / "bin" / "pause", interp=True)
    with pytest.raises(LabError, match="dynamically linked"):
        images.build_image(images.IMAGES[0], tmp_path / "bin", tmp_path / "out")


def test_missing_debian_tool_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_HOST_PATH", "/nonexistent")
    with pytest.raises(LabError, match="bind9-dnsutils"):
        images._find_tool(next(t for t in images.TOOLS if t.name == "dig"))


def _host_has_tools() -> bool:
    return all(shutil.which(t.name) for t in (*images.TOOLS, images.BUSYBOX) if not t.optional)


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
@pytest.mark.skipif(not _host_has_tools(), reason="Debian network tools not installed")
def test_agnhost_rootfs_runs_its_tools(tmp_path: Path) -> None:
    """Root only: the assembled tools rootfs runs dig, ip, curl, tcpdump and busybox in a chroot."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Stand-in for the Go agnhost binary: any static executable will do.
    shutil.copyfile(shutil.which("busybox"), bin_dir / "agnhost")
    out = images.build_image(images.IMAGES[2], bin_dir, tmp_path / "out")

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with tarfile.open(out) as tar:
        layer_name = json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]
        with tarfile.open(fileobj=tar.extractfile(layer_name)) as layer:
            layer.extractall(rootfs, filter="fully_trusted")
    script = (
        "dig -v && ip -V && curl --version && tcpdump --version && "
        "echo a:b | awk -F: '{print $2}' && readlink /bin/sh && wget --help 2>&1 | head -1 && "
        # An extension must load (dlopen) for the rule to parse: the xtables dir came along.
        "iptables --version && iptables -m comment --help 2>&1 | grep -q 'comment match options' "
        "&& echo extensions-ok"
    )
    env = {"PATH": images.DEFAULT_ENV[0].removeprefix("PATH=")}
    result = subprocess.run(
        ["chroot", str(rootfs), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "DiG 9." in output
    assert "iproute2" in output
    assert "curl " in output and "tcpdump version" in output
    assert "\nb\n" in output and "\ndash\n" in output and "BusyBox" in output
    assert "iptables v" in output and "extensions-ok" in output
