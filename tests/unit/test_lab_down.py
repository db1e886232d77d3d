"""What `lab down` unmounts and removes: /run/netns, the nodes' bpffs, the cgroup2
directories; each idempotent. Pure parts, on temporary directories."""

from pathlib import Path

from packetwalk.lab import cgroups, network, nodes


class Mounts:
    """/run/netns's bind mounts, `layers` deep; umount takes one."""

    def __init__(self, layers: int):
        self.layers = layers

    def mounted(self, _p: Path) -> bool:
        return self.layers > 0

    def umount(self, _p: Path) -> None:
        self.layers -= 1


def test_down_unmounts_an_empty_run_netns_whoever_made_it(tmp_path):
    netns = tmp_path / "netns"
    netns.mkdir()
    m = Mounts(2)  # stacked: an earlier lab's, and this one's
    network.release_netns_dir(False, netns, m.mounted, m.umount)
    assert m.layers == 0 and netns.is_dir()  # not the lab's directory: kept
    network.release_netns_dir(True, netns, m.mounted, m.umount)
    assert not netns.exists()
    network.release_netns_dir(True, netns, m.mounted, m.umount)  # a second down: nothing to do


def test_down_leaves_run_netns_mounted_while_a_netns_is_in_it(tmp_path):
    netns = tmp_path / "netns"
    netns.mkdir()
    (netns / "someone-elses").touch()
    m = Mounts(1)
    network.release_netns_dir(True, netns, m.mounted, m.umount)
    assert m.layers == 1 and (netns / "someone-elses").exists()


def test_an_umount_that_fails_does_not_spin(tmp_path):
    netns = tmp_path / "netns"
    netns.mkdir()
    calls = []
    network.release_netns_dir(True, netns, lambda _p: True, calls.append)
    assert len(calls) == 8 and netns.is_dir()


def test_down_unmounts_bpffs_in_each_node_mount_namespace():
    argv = nodes.unmount_bpffs_in(Path("/var/lib/packetwalk/run/ns/pw-worker.mnt"))
    assert argv[:4] == ["nsenter", "--mount=/var/lib/packetwalk/run/ns/pw-worker.mnt", "--", "sh"]
    assert "findmnt -rn -t bpf -o TARGET" in argv[-1] and 'umount -l "$m"' in argv[-1]
    assert argv[-1].endswith("; true")  # none mounted (another CNI, a second down): not an error


def test_remove_all_unmounts_bpffs_before_the_namespace(tmp_path, monkeypatch):
    ns = tmp_path / "ns"
    ns.mkdir()
    for f in ("pw-worker.mnt", "pw-worker.uts"):
        (ns / f).touch()
    monkeypatch.setattr(nodes.paths, "NS_DIR", ns)
    monkeypatch.setattr(nodes, "is_mountpoint", lambda f: f != ns)
    ran = []
    monkeypatch.setattr(nodes, "run", lambda argv, *a, **k: ran.append(argv) or "")
    nodes.remove_all()
    assert ran == [nodes.unmount_bpffs_in(ns / "pw-worker.mnt"), ["umount", str(ns / "pw-worker.mnt")],
                   ["umount", str(ns / "pw-worker.uts")]]


def test_the_cgroup2_directories_go_but_one_still_in_use_is_left(tmp_path):
    busy = tmp_path / "packetwalk/pw-worker/kubepods/pod1"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text("7")  # a plain directory with a file: rmdir fails, as on a busy cgroup
    (tmp_path / "packetwalk/pw-worker/lab").mkdir()
    cgroups.remove_unified(tmp_path)
    assert busy.is_dir() and not (tmp_path / "packetwalk/pw-worker/lab").exists()
