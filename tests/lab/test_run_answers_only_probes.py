"""Issue 11 on the lab: no object of a run runs a command or dials for anyone.

A whole east-west run is kept (--keep), then every address it exposes is asked
netexec's dangerous requests (/shell, /dial, /upload, /exit, /shutdown) from the
host and from a pod in another namespace: every pod IP and port, every Service's
ClusterIP and NodePort on every node, and the hostNetwork pods' ports on the
nodes. Each must answer a probe (/hostname), so the test proves it reached the
server, and refuse the rest. The UDP ports' netexec serves HTTP on the same port
number over TCP, overridden: it must answer /hostname to every path.
"""

import json
import subprocess

import pytest

from packetwalk.lab import paths
from packetwalk.runs import MANAGED_BY
from packetwalk.tiers import DEFAULT_IMAGE
from tests.suiterun import run_suites

from .conftest import kubectl, kubectl_json

MANAGED = f"{MANAGED_BY}=packetwalk"
# The asker in another namespace: its own, made here (the session's lab-test pods
# may be gone: the lifecycle tests bring the lab down and up before this one).
OTHER_NS, ASKER = "pw-labtest-asker", "asker"
ASKER_POD = f"""
apiVersion: v1
kind: Pod
metadata: {{name: {ASKER}, namespace: {OTHER_NS}}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsNonRoot: true
    runAsUser: 65534
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: asker
      image: "{DEFAULT_IMAGE}"
      imagePullPolicy: IfNotPresent
      command: ["/agnhost", "pause"]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
"""
# What the asking end prints in place of an answer: its datagram went nowhere
# (the host blackholes the Service range: "Invalid argument"), or no answer came
# (busybox's timeout says "Terminated" as it ends dd).
ASKER_ERRORS = ("Invalid argument", "Connection refused", "No route to host", "Terminated",
                "Network is unreachable")
COMMAND_REQUESTS = ("shell?cmd=id", "dial?host=198.51.100.10&port=80&request=clientip&protocol=http",
                    "upload", "exit?code=1", "shutdown")

# One line per request: "<address> <path> <HTTP status> <body>". bash, so it runs
# the same on the host and in the agnhost image.
ASK_ALL = r"""
ask_tcp() {
  for path in hostname $PATHS; do
    body=$(curl -s -m 2 -o /dev/stdout -w ' %{http_code}' "http://$1/$path" | tr '\n' ' ')
    echo "$1 $path ${body##* } ${body% *}"
  done
}
ask_udp() {
  for request in hostname "shell id"; do
    answer=$( { exec 3<>"/dev/udp/${1%:*}/${1##*:}" && printf %s "$request" >&3 &&
                timeout 2 dd bs=65535 count=1 status=none <&3; } 2>&1 | tr '\n' ' ')
    echo "$1 udp:${request// /_} - $answer"
  done
}
for addr in $ADDRS; do ask_tcp "$addr" & done
for addr in $UDP_ADDRS; do ask_udp "$addr" & done
wait
"""


@pytest.fixture
def kept_run(lab, tmp_path):
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)
    kubectl("delete", "namespace", OTHER_NS, "--ignore-not-found", "--wait=true", timeout=120)
    kubectl("create", "namespace", OTHER_NS)
    kubectl("apply", "-f", "-", stdin=ASKER_POD)
    run = run_suites(tmp_path, "suites/east_west", extra=("--keep",))
    assert not run.failed and not run.errors, run.output[-4000:]
    kubectl("-n", OTHER_NS, "wait", "--for=condition=Ready", f"pod/{ASKER}", "--timeout=60s",
            timeout=70)
    yield
    kubectl("delete", "namespace", "-l", MANAGED, "--wait=true", timeout=120)
    kubectl("delete", "namespace", OTHER_NS, "--ignore-not-found", "--wait=false")


def _addresses() -> tuple[list[str], list[str]]:
    """(tcp, udp) "ip:port" of everything the kept run exposes; the UDP ports of
    the pods over TCP too (netexec's overridden HTTP side)."""
    node_ips = [a["address"] for n in kubectl_json("get", "nodes")["items"]
                for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
    tcp, udp = set(), set()
    for pod in kubectl_json("get", "pods", "-A", "-l", MANAGED)["items"]:
        for container in pod["spec"]["containers"]:
            for port in container.get("ports") or []:
                where = f"{pod['status']['podIP']}:{port['containerPort']}"
                tcp.add(where)
                if port.get("protocol") == "UDP":
                    udp.add(where)
    for svc in kubectl_json("get", "services", "-A", "-l", MANAGED)["items"]:
        spec = svc["spec"]
        for port in spec.get("ports") or []:
            ours = udp if port["protocol"] == "UDP" else tcp
            if spec.get("clusterIP") not in (None, "None"):
                ours.add(f"{spec['clusterIP']}:{port['port']}")
            if port.get("nodePort"):
                ours.update(f"{ip}:{port['nodePort']}" for ip in node_ips)
    return sorted(tcp), sorted(udp)


def _check(where: str, output: str, tcp: list[str], udp: list[str]) -> None:
    rows = [(line.split(" ", 3) + ["", "", "", ""])[:4]
            for line in output.splitlines() if line.strip()]
    asked = {(addr, path): (status, body.strip()) for addr, path, status, body in rows}
    assert {a for a, _ in asked} == set(tcp) | set(udp), f"{where}: not every address was asked"
    # Reached: the addresses that answered a probe. The refusals below mean
    # something only for them; most must be reached (the host cannot reach
    # ClusterIPs: the lab blackholes the Service range there).
    reached = [a for a in tcp if asked[(a, "hostname")][0] == "200"]
    assert len(reached) >= len(tcp) / 2, f"{where}: few answered /hostname: {sorted(asked.items())}"
    for (addr, path), (status, body) in asked.items():
        if path.startswith("udp:") and path != "udp:hostname":
            # No answer: nothing, or the asker's own error (no route, refused).
            failed = any(error in body for error in ASKER_ERRORS)
            assert body == "" or failed, (where, addr, path, body)
        elif not path.startswith("udp:") and path != "hostname":
            # answer.sh refuses (404); netexec's overridden HTTP side answers /hostname.
            hostname = asked[(addr, "hostname")][1]
            assert status in ("404", "000") or (status == "200" and body == hostname), (
                where, addr, path, status, body)
            assert "uid=" not in body and "responses" not in body, (where, addr, path, body)
    answered = [a for a in udp if asked[(a, "udp:hostname")][1] and
                not any(e in asked[(a, "udp:hostname")][1] for e in ASKER_ERRORS)]
    assert answered, f"{where}: no UDP address answered hostname: {sorted(asked.items())}"
    print(f"{where}: {len(reached)} of {len(tcp)} TCP and {len(answered)} of {len(udp)} UDP "
          f"addresses answered a probe; none ran a command or dialed")


def test_no_object_of_a_run_runs_a_command_or_dials(kept_run):
    tcp, udp = _addresses()
    assert len(tcp) >= 10 and len(udp) >= 5, (tcp, udp)
    env = {"ADDRS": " ".join(tcp), "UDP_ADDRS": " ".join(udp), "PATHS": " ".join(COMMAND_REQUESTS)}
    # From the host.
    host = subprocess.run(["bash", "-c", ASK_ALL], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=600, check=False)
    _check("the host", host.stdout, tcp, udp)
    # From a pod in another namespace.
    script = "".join(f"{k}={json.dumps(v)}; " for k, v in env.items()) + ASK_ALL
    pod = subprocess.run([str(paths.kubectl()), f"--kubeconfig={paths.KUBECONFIG}", "-n", OTHER_NS,
                          "exec", ASKER, "--", "bash", "-c", script],
                         capture_output=True, text=True, timeout=600, check=False)
    assert pod.returncode == 0, (pod.stdout + pod.stderr)[-2000:]
    _check(f"a pod in {OTHER_NS}", pod.stdout, tcp, udp)
    # And every netexec of the run (the UDP side) has its HTTP side overridden.
    for pod in kubectl_json("get", "pods", "-A", "-l", MANAGED)["items"]:
        for container in pod["spec"]["containers"]:
            argv = " ".join(container.get("command", []) + container.get("args", []))
            assert "netexec" not in argv or "--http-override=/hostname" in argv, (
                pod["metadata"]["name"], argv)
