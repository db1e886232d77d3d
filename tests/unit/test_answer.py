"""What the run's pods answer and how probes ask, against each other on this
machine, started as the pods start them, on loopback: answer.sh under socat
(HTTP), agnhost netexec's UDP side with its HTTP side overridden (the lab's own
agnhost build), and ask_script (bash, curl, dd)."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from packetwalk.probes import OK, REFUSED, TIMEOUT, ask_script, classify_asks
from packetwalk.workloads import MANIFESTS

pytestmark = pytest.mark.skipif(shutil.which("socat") is None,
                                reason="socat is missing (.ci/setup installs it)")
AGNHOST = Path("/var/lib/packetwalk/bin/agnhost")  # built by `packetwalk lab up`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    """(http port, udp port): answer.sh under socat, netexec for UDP."""
    if not AGNHOST.exists():
        pytest.skip(f"{AGNHOST} is not built yet (`packetwalk lab up` builds it)")
    script = tmp_path_factory.mktemp("answer") / "answer.sh"
    script.write_text((MANIFESTS / "answer.sh").read_text())
    http, udp = _free_port(), _free_port()
    procs = [subprocess.Popen(["socat", "-T10", f"TCP4-LISTEN:{http},bind=127.0.0.1,reuseaddr,fork",
                               f"EXEC:bash {script} http"]),
             subprocess.Popen([str(AGNHOST), "netexec", f"--http-port={udp}", f"--udp-port={udp}",
                               "--http-override=/hostname", "--udp-listen-addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as a, socket.socket() as b:
            if a.connect_ex(("127.0.0.1", http)) == 0 and b.connect_ex(("127.0.0.1", udp)) == 0:
                break
        time.sleep(0.05)
    yield http, udp
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def ask(protocol: str, port: int, request: str, tries: int = 1, wait: float = 1):
    script = ask_script(protocol, "127.0.0.1", port, request, tries, wait)
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                       check=False)
    return classify_asks(r.returncode, r.stdout + r.stderr, protocol, wait)


def curl(port: int, path: str, *extra: str) -> tuple[str, str]:
    r = subprocess.run(["curl", "-s", "-m", "5", "-w", "\n%{http_code}", *extra,
                        f"http://127.0.0.1:{port}/{path}"],
                       capture_output=True, text=True, timeout=10, check=False)
    body, _, status = r.stdout.rpartition("\n")
    return status, body


def test_it_answers_the_probes(answerer):
    http, udp = answerer
    host = socket.gethostname()
    assert ask("udp", udp, "hostname", tries=3) == (OK, [host] * 3, "")
    cls, answers, _ = ask("udp", udp, "clientip")
    assert cls == OK and answers[0].startswith("127.0.0.1:")
    assert ask("udp", udp, "echo abc 123")[1] == ["abc 123"]
    payload = "0123456789abcdef" * 120  # near a 1500-byte MTU, in one datagram
    assert ask("udp", udp, "echo " + payload)[1] == [payload]
    assert ask("tcp", http, "hostname", tries=2) == (OK, [host] * 2, "")
    assert curl(http, "clientip")[1].startswith("127.0.0.1:")
    payload = "0123456789abcdef" * 300
    assert curl(http, "echo", "--data", f"msg={payload}") == ("200", payload)
    assert curl(http, "echo?msg=hi&x=1") == ("200", "hi")
    assert curl(http, "healthz") == ("200", "ok")


def test_it_answers_nothing_else(answerer, tmp_path):
    http, udp = answerer
    marker = tmp_path / "ran"
    for path in (f"shell?cmd=touch%20{marker}", "dial?host=127.0.0.1&port=1&request=x",
                 "upload", "exit?code=1", "shutdown", "envvar?name=PATH", "../../etc/passwd"):
        status, body = curl(http, path)
        assert status == "404" and "uid=" not in body, (path, status, body)
        # netexec's own HTTP side (on the UDP port's number) answers every path as /hostname.
        assert curl(udp, path) == ("200", socket.gethostname()), path
    for request in (f"shell touch {marker}", "$(id)"):
        assert ask("udp", udp, request)[0] == TIMEOUT, request
    assert not marker.exists()
    assert curl(http, "hostname")[0] == "200", "a bad request must not take the server down"


def test_many_askers_at_once_lose_nothing(answerer):
    """socat's UDP fork modes lost over half the datagrams with 4 concurrent clients
    on the lab; this is why UDP is netexec's."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ask("udp", answerer[1], "hostname", tries=10), range(8)))
    assert all(r[0] == OK and len(r[1]) == 10 for r in results), results


def test_a_closed_port_is_refused_and_a_silent_one_times_out(answerer):
    assert ask("udp", _free_port(), "hostname")[0] == REFUSED
    cls, _, detail = ask("udp", answerer[1], "nothing-we-answer", wait=0.5)
    assert cls == TIMEOUT and detail.endswith("no answer within 0.5 s")


def test_every_planned_container_is_socat_with_the_script_or_netexec_overridden():
    from packetwalk.workloads import plan
    from tests.unit.test_workloads import NODES, RUN
    script = (MANIFESTS / "answer.sh").read_text()
    containers = [c for _, o in plan(RUN, NODES) if o["kind"] == "Pod"
                  for c in o["spec"]["containers"]]
    assert len(containers) >= 10
    for c in containers:
        argv = " ".join(c["command"])
        if c["name"] == "udp":  # netexec, its HTTP side overridden
            assert "netexec" in argv and "--http-override=/hostname" in argv, argv
            continue
        env = {v["name"]: v.get("value") for v in c.get("env") or []}
        assert env.get("PW_ANSWER") == script, c["name"]
        assert "socat" in argv and "netexec" not in argv, argv
