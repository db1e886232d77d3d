"""Each lab fault really breaks its layer, and `heal` really restores it.

Probed directly (curl, dig, nc from the selftest pods), not through the
suite: this proves the fault tool itself. tests/selfcheck proves the suite
names each fault.
"""

import subprocess

import pytest

from packetwalk.lab import faults, state, topology

from .conftest import DENY_ALL, NS, eventually, exec_in, kubectl, kubectl_json


def cluster_ip():
    return kubectl_json("-n", NS, "get", "service", "server-a")["spec"]["clusterIP"]


def from_outside(url):
    r = subprocess.run(["ip", "netns", "exec", topology.OUTSIDE_NS, "curl", "-s", "-m", "2", url],
                       capture_output=True, text=True, check=False)
    return r.returncode, r.stdout


def node_ip(pod):
    return pod["status"]["hostIP"]


# Each entry: fault, node ("a"/"b" for the selftest pods' nodes, or None), and a
# probe returning True when the layer works. Expected: True before and after, False during.
def probes(st):
    a_ip, _b_ip = st["a"]["status"]["podIP"], st["b"]["status"]["podIP"]
    big = "x" * 1900

    def ok(result):
        return result[0] == 0

    return {
        "dns-down": (None, lambda: ok(exec_in("server-b", "dig", "+short", "+time=1", "+tries=1",
                                              f"server-a.{NS}.svc.cluster.local")) and
                     exec_in("server-b", "dig", "+short", "+time=1", "+tries=1",
                             f"server-a.{NS}.svc.cluster.local")[1] == cluster_ip()),
        "kube-proxy-broken": ("b", lambda: exec_in("server-b", "curl", "-s", "-m", "2",
                                                   f"http://{cluster_ip()}/hostname")[1] == "server-a"),
        "cross-node-route": ("a", lambda: ok(exec_in("server-b", "/agnhost", "connect", "--timeout=2s",
                                                     f"{a_ip}:8080"))),
        "egress-masquerade": (None, lambda: exec_in(
            "server-a", "curl", "-s", "-m", "2",
            f"http://{topology.OUTSIDE_HOST_IP}/clientip")[1].startswith(node_ip(st["a"]) + ":")),
        "policy-enforcer-down": (None, lambda: not ok(exec_in("server-b", "/agnhost", "connect", "--timeout=2s",
                                                              f"{a_ip}:8080"))),
        "nodeport-blocked": ("b", lambda: from_outside(f"http://{node_ip(st['b'])}:30080/hostname")
                             == (0, "server-a")),
        "udp-dropped": (None, lambda: exec_in("server-b", "sh", "-c",
                                              f"echo hostname | nc -u -w2 {a_ip} 8081")[1] == "server-a"),
        "mtu-mismatch": (None, lambda: exec_in("server-b", "curl", "-s", "-m", "3",
                                               f"http://{a_ip}:8080/echo?msg={big}")[1] == big),
        "hairpin-off": (None, lambda: exec_in("server-a", "curl", "-s", "-m", "2",
                                              f"http://{cluster_ip()}/hostname")[1] == "server-a"),
    }


# Probed here: the faults a direct probe can show. The policy-ignores-* faults
# break only some NetworkPolicy semantics; the self-check proves them through
# exactly their cases (tests/selfcheck/expected.py).
PROBED = ("dns-down", "kube-proxy-broken", "cross-node-route", "egress-masquerade",
          "policy-enforcer-down", "nodeport-blocked", "udp-dropped", "mtu-mismatch", "hairpin-off")


def test_every_fault_is_probed_here_or_pinned_by_the_self_check():
    from tests.selfcheck.expected import EXPECTED, EXPECTED_AT_START, EXPECTED_DUAL
    from tests.selfcheck.test_flaky import FAULT as FLAKY

    assert set(PROBED) <= set(faults.FAULTS)
    # EXPECTED_DUAL: the one-family faults, pinned on the dual lab (test_dual_stack.py).
    # EXPECTED_AT_START: the control plane's, pinned by test_control_plane.py.
    assert set(faults.FAULTS) <= (set(PROBED) | set(EXPECTED) | set(EXPECTED_DUAL)
                                  | set(EXPECTED_AT_START) | {FLAKY})


@pytest.mark.parametrize("name", PROBED)
def test_fault_breaks_its_layer_and_heal_restores_it(selftest, name):
    node_key, works = probes(selftest)[name]
    node = selftest[node_key]["spec"]["nodeName"] if node_key else None
    if name == "policy-enforcer-down":
        kubectl("-n", NS, "apply", "-f", "-", stdin=DENY_ALL)  # "works" = the policy blocks
    try:
        assert eventually(lambda: (works(), ""), timeout=20)[0], f"{name}: layer broken before the fault"
        faults.inject(name, node)
        assert name in state.load().faults
        broken, _ = eventually(lambda: (not works(), ""), timeout=20)
        assert broken, f"{name}: the layer still works with the fault injected"
    finally:
        assert name in faults.heal() or name not in state.load().faults
        assert state.load().faults == {}
    try:
        assert eventually(lambda: (works(), ""), timeout=30)[0], f"{name}: heal did not restore the layer"
    finally:
        kubectl("-n", NS, "delete", "networkpolicy", "--all")
