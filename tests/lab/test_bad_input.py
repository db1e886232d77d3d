"""Bad input gets one clear line and a non-zero exit, never a traceback."""

import os
import subprocess
import sys

import pytest

from packetwalk.lab import cluster, network, preflight, state
from packetwalk.lab.errors import LabError
from packetwalk.lab.processes import alive


def run_cli(*args, env=None, as_nobody=False):
    # Drop to nobody only after the imports, which need root's site-packages.
    drop = "import os, gettext, locale, packetwalk.lab.cluster; os.setgid(65534); os.setuid(65534); " if as_nobody else ""
    code = f"import sys; from packetwalk.cli import main; {drop}sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)


def one_clear_line(r):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_up_without_root():
    line = one_clear_line(run_cli("lab", "up", as_nobody=True))
    assert "needs root" in line


def test_broken_build_fails_before_touching_the_running_lab(lab, tmp_path):
    env = {**os.environ, "PACKETWALK_LAB_ROOT": str(tmp_path / "lab"),
           "PACKETWALK_CACHE_ROOT": str(tmp_path / "cache"), "GOPROXY": "off"}
    before = state.load()
    running = [p for p in before.procs if alive(p)]
    line = one_clear_line(run_cli("lab", "up", env=env))
    assert line.startswith("packetwalk: building ") and "failed" in line
    # Untouched: the same processes saved (pid and start time), and every one
    # that ran before still runs, none stopped or restarted.
    after = state.load()
    assert [(p.name, p.node, p.pid, p.starttime) for p in after.procs] == \
        [(p.name, p.node, p.pid, p.starttime) for p in before.procs]
    assert running and all(alive(p) for p in running), cluster.problems(after)


def test_missing_kernel_feature_is_named(tmp_path):
    (tmp_path / "filesystems").write_text("nodev\tsysfs\nnodev\ttmpfs\n")  # no overlay
    with pytest.raises(LabError, match="missing kernel feature: overlayfs"):
        preflight.kernel(tmp_path)


def test_port_6443_in_use_is_named():
    ns = "pwtest-port"
    network.ip("netns", "add", ns)
    try:
        network.ip("link", "set", "lo", "up", ns=ns)
        listener = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c",
                                     ("import socket,time; s=socket.socket(); s.bind(('0.0.0.0',6443)); "
                                     "s.listen(); print('ok', flush=True); time.sleep(60)")],
                                    stdout=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == "ok"
        with pytest.raises(LabError, match="port 6443 is already in use"):
            preflight.port_free(ns, 6443)
        listener.kill()
        listener.wait()
    finally:
        network.ip("netns", "del", ns, check=False)
