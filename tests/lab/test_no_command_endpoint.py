"""The lab's outside host runs no command for anyone and runs as nobody:
`curl 'http://198.51.100.10/shell?cmd=id'` from the host gets no uid."""

import re
import subprocess
from pathlib import Path

from packetwalk.lab import outside, state
from packetwalk.lab import topology as t
from packetwalk.lab.processes import alive

BASE = f"http://{t.OUTSIDE_HOST_IP}:{t.OUTSIDE_HTTP_PORT}"


def curl(path: str) -> str:
    r = subprocess.run(["curl", "-s", "-m", "5", BASE + path], capture_output=True, text=True,
                       timeout=10, check=False)
    assert r.returncode == 0, f"curl {path}: exit {r.returncode} {r.stderr}"
    return r.stdout


def test_shell_answers_no_uid_and_clientip_still_answers(lab):
    for path in ("/shell?cmd=id", "/shell?cmd=id&x=1", "/dial?host=10.250.0.10&port=6443",
                 "/exit?code=1"):
        body = curl(path)
        assert "uid=" not in body and "responses" not in body, (path, body)
    # The host reaches 198.51.100.10 through the lab bridge from 10.250.0.1.
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", curl("/clientip")), curl("/clientip")
    assert curl("/clientip").split(":")[0] == curl("/anything").split(":")[0]


def test_the_outside_host_runs_as_nobody_without_capabilities(lab):
    procs = [p for p in state.load().procs if p.name == outside.PROC_NAME and p.node == t.OUTSIDE_NS]
    assert len(procs) == 1 and alive(procs[0]), procs
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{procs[0].pid}/status").read_text().splitlines())
    assert status["Uid"].split() == [str(outside.NOBODY)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(outside.NOBODY)] * 4, status["Gid"]
    assert status["Groups"].split() == [], status["Groups"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"]
    # Port 80 is open to nobody in pw-outside only (a per-namespace sysctl), not on the host.
    key, value = outside.UNPRIVILEGED_PORT_SYSCTL
    inside = subprocess.run(["ip", "netns", "exec", t.OUTSIDE_NS, "sysctl", "-n", key],
                            capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    assert inside == value
    assert Path("/proc/sys/" + key.replace(".", "/")).read_text().strip() != value
