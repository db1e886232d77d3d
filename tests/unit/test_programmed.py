"""The wait until the nodes' proxies have the run's Services (programmed.py): what is
asked, from where, and what the run is told. The bash itself runs in tests/lab."""

import subprocess

from packetwalk.inventory import Inventory, Pod, Service
from packetwalk.placement import Node
from packetwalk.probes import ExecResult, ProbeError
from packetwalk.programmed import await_services, script, targets

A = Node("pw-worker", "10.250.0.11", "pw-worker")
B = Node("pw-worker2", "10.250.0.12", "pw-worker2", ips=("10.250.0.12", "fd00:10::12"))


def inventory(clients=("client-pw-worker", "client-pw-worker2")) -> Inventory:
    inv = Inventory("abc123", "pw-abc123", "pw-abc123-peer", [A, B], "10.96.0.10")
    for name, node in (("client-pw-worker", A), ("client-pw-worker2", B)):
        inv.groups[name] = "core"
        if name in clients:
            inv.pods[name] = Pod(name, "pw-abc123", "client", node.name, "10.244.1.5", 8080)
    inv.services = {
        "server-pw-worker": Service("server-pw-worker", "pw-abc123", "10.96.5.1",
                                    {"http": 8080, "udp": 8081}, {}, ()),
        "server-pw-worker-nodeport": Service("server-pw-worker-nodeport", "pw-abc123",
                                             "10.96.5.2", {"http": 8080}, {"http": 30080}, ()),
        "server-pw-worker-local": Service("server-pw-worker-local", "pw-abc123", "10.96.5.3",
                                          {"http": 8080}, {"http": 30081}, ()),
        "servers-headless": Service("servers-headless", "pw-abc123", "None", {"http": 8080}, {}, ()),
        "dual": Service("dual", "pw-abc123", "10.96.5.4", {"http": 8080}, {}, (),
                        cluster_ips=("10.96.5.4", "fd10:96::4")),
    }
    return inv


def test_every_clusterip_in_each_family_and_the_cluster_wide_nodeports_on_every_node():
    urls = targets(inventory())
    assert urls == [
        "http://10.96.5.1:8080/healthz", "http://10.96.5.2:8080/healthz",
        "http://10.96.5.3:8080/healthz", "http://10.96.5.4:8080/healthz",
        "http://[fd10:96::4]:8080/healthz",
        # The Local NodePort answers only where its backend is: not asked.
        "http://10.250.0.11:30080/healthz", "http://10.250.0.12:30080/healthz",
        "http://[fd00:10::12]:30080/healthz"]


def test_the_script_asks_all_at_once_and_prints_only_the_silent():
    # Run for real with a curl that fails for one URL and answers the other.
    text = script(["http://ok/healthz", "http://never/healthz"], 1)
    fake = 'curl() { [[ "${@: -1}" == http://ok/* ]]; }\n'
    out = subprocess.run(["bash", "-c", fake + text], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    assert out.split() == ["http://never/healthz"]


def test_each_client_asks_and_the_note_names_what_never_answered():
    asked = []

    def execs(src, command, timeout):
        asked.append(src.pod)
        silent = "http://10.96.5.2:8080/healthz\n" if src.pod == "client-pw-worker2" else ""
        return ExecResult(0, silent, "", 0.1)

    note = await_services(execs, inventory(), bound=5)
    assert sorted(asked) == ["client-pw-worker", "client-pw-worker2"]
    assert note.startswith("Services not yet answering when the tests began (from "
                           "client-pw-worker2, no answer within 5s from "
                           "http://10.96.5.2:8080/healthz)")


def test_all_answering_says_how_long_and_a_missing_client_is_skipped():
    asked = []

    def execs(src, command, timeout):
        asked.append(src.pod)
        return ExecResult(0, "", "", 0.1)

    note = await_services(execs, inventory(clients=("client-pw-worker",)))
    assert asked == ["client-pw-worker"]
    assert note.startswith("Services answered from every node's client ") and "8 ClusterIPs" in note


def test_an_exec_that_fails_is_a_note_not_an_error():
    def execs(src, command, timeout):
        raise ProbeError("exec into x failed: forbidden")

    assert "could not ask from client-pw-worker: exec into x failed: forbidden" in \
        await_services(execs, inventory())
