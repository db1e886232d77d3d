"""A node's processes in its cgroup2 directory, where cilium's socket LB attaches:
pure parts, on temporary directories."""

import subprocess

from packetwalk.lab import cgroups, processes


def test_a_daemon_joins_the_nodes_cgroup2_directory_as_in_v1(tmp_path):
    cgroups.join_unified("/packetwalk/pw-worker/lab", 4242, tmp_path)
    assert (tmp_path / "packetwalk/pw-worker/lab/cgroup.procs").read_text() == "4242"
    cgroups.join_unified("/packetwalk/pw-worker/lab", 4242, tmp_path / "missing")  # no cgroup2: nothing
    assert not (tmp_path / "missing").exists()


def test_a_node_side_probe_runs_in_the_nodes_cgroup2_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "UNIFIED", tmp_path)
    # The node is down (start() made no directory): its netns only, nothing made.
    assert processes.as_node_process("pw-worker") == processes.in_netns("pw-worker")
    assert not (tmp_path / "packetwalk").exists()
    procs = tmp_path / "packetwalk/pw-worker/lab/cgroup.procs"
    procs.parent.mkdir(parents=True)
    procs.touch()
    argv = processes.as_node_process("pw-worker")
    assert argv[:5] == ["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", str(procs)]
    assert argv[5:] == processes.in_netns("pw-worker")
    # The shell writes its own pid, then execs the command with that pid.
    out = subprocess.run([*argv[:5], "sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    assert procs.read_text().strip() == out.stdout.strip()


def test_the_dns_wait_dials_the_service_as_a_node_process(monkeypatch):
    from packetwalk.lab import cluster
    seen = []
    monkeypatch.setattr(cluster, "as_node_process", lambda node: ["NODE", node])
    monkeypatch.setattr(cluster, "run", lambda argv, *a, **k: seen.append(argv) or "10.96.0.1\n")
    assert cluster.dns_answers("pw-worker")
    assert seen[0][:3] == ["NODE", "pw-worker", "dig"] and "@10.96.0.10" in seen[0]
