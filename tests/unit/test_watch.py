"""A whole watch, its pods played by a real bash on this machine: loops started, CMD run
and timed, the settle period, the loops stopped and read back. CMD itself makes the
outage (the server answers another name while a file exists), so the truth is CMD's
own timing; and the plan of watched cells from an inventory."""

import http.server
import socket
import subprocess
import threading
import time

import pytest

from packetwalk.inventory import NODE_PORT, Inventory, Pod, Service
from packetwalk.outage import INTERVAL
from packetwalk.placement import Node, build_placements
from packetwalk.probes import WRONG_BACKEND, ExecResult, Source, Target
from packetwalk.watch import WatchResult, run_watch
from packetwalk.watchcells import WATCHED, WatchCell, plan
from tests.unit.test_probes_concurrent import _Hostname as HostnameAfterDelay

A, B = Node("pw-worker", "10.250.0.11", "pw-worker"), Node("pw-worker2", "10.250.0.12", "pw-worker2")
CLIENT = Source("client-w1", "pw-1", "pw-worker", "127.0.0.1")


def local_exec(src, command, timeout):
    """The pod's exec, played by this machine."""
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    return ExecResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture
def switchable(tmp_path):
    """An HTTP server answering 'server-a', or 'server-b' while tmp_path/off exists."""
    off = tmp_path / "off"

    class Handler(HostnameAfterDelay):
        delay = 0

        def body(self) -> bytes:
            return b"server-b\n" if off.exists() else b"server-a\n"

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], off
    server.shutdown()
    server.server_close()


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cmd_makes_an_outage_the_watch_times_it_on_cmds_clock(switchable, tmp_path):
    port, off = switchable
    cells = [WatchCell("test_cluster_ip[same-node-tcp]", "c0", CLIENT,
                       Target("127.0.0.1", port, "tcp"), "server-a"),
             WatchCell("test_pod_ip[same-node-udp]", "c1", CLIENT,
                       Target("127.0.0.1", _closed_udp_port(), "udp"), "server-a")]
    began, ended = tmp_path / "began", tmp_path / "ended"  # CMD's own times: the truth
    cmd = (f"sleep 0.5; touch {off}; date +%s.%N >{began}; sleep 1; date +%s.%N >{ended}; "
           f"rm {off}; sleep 0.3")
    watch = run_watch(cells, local_exec, cmd, settle=0.6, max_outage=0.5, warm_up=1.0,
                      directory=str(tmp_path / "pw-watch"), warm_up_limit=1.0, end_grace=0)
    assert watch.ran.ok and watch.cmd_end >= 1.8
    assert watch.notes == [("warm-up: 1 cell(s) had not answered after 1.0 s, CMD began anyway "
                            "(their outage before CMD is not CMD's): test_pod_ip[same-node-udp]")]
    switched = watch.cells["test_cluster_ip[same-node-tcp]"]
    (window,) = switched.windows
    truth = [float(path.read_text()) - watch.ran.start for path in (began, ended)]
    assert window.start == pytest.approx(truth[0], abs=INTERVAL + 0.05)
    assert window.duration == pytest.approx(truth[1] - truth[0], abs=INTERVAL + 0.05)
    assert window.classes == (WRONG_BACKEND,)
    assert switched.first == pytest.approx(-1.0, abs=0.3)  # the warm-up before CMD
    assert switched.last == pytest.approx(watch.cmd_end + 0.6, abs=0.3)  # and the settle
    assert switched.rate == pytest.approx(1 / INTERVAL, rel=0.1)
    assert switched.clock_error < 0.05  # one machine: half an exec's round trip
    assert watch.failures("test_cluster_ip[same-node-tcp]")[0].startswith("longest outage 1.")
    longest, at_end = watch.failures("test_pod_ip[same-node-udp]")  # a port never open
    assert longest.startswith("longest outage ") and "(REFUSED)" in at_end
    assert at_end.startswith("broken at the end: every probe since -1.")
    assert "; settled 0.6 s; 2 cells, 2 over --max-outage 0.5 s" in watch.words()
    assert watch.measured().startswith("measured: every 0.2 s asked; ")
    assert " probes/s per cell, largest gap 0." in watch.measured()
    assert "clock error at most 0.0" in watch.measured()
    assert WatchResult.from_json(watch.to_json()) == watch


def test_cmd_waits_for_every_cell_to_answer_and_the_end_for_a_last_lost_probe(switchable,
                                                                             tmp_path):
    port, off = switchable
    off.touch()  # the cell answers another name at first, as a Service not yet programmed
    threading.Timer(1.5, off.unlink).start()
    cells = [WatchCell("test_cluster_ip[same-node-tcp]", "c0", CLIENT,
                       Target("127.0.0.1", port, "tcp"), "server-a")]
    # CMD breaks the cell and heals it 1.5 s later, after the 0.4 s settle period has ended.
    cmd = f"touch {off}; (sleep 1.5; rm -f {off}) >/dev/null 2>&1 &"
    watch = run_watch(cells, local_exec, cmd, settle=0.4, max_outage=5, warm_up=0.4,
                      directory=str(tmp_path / "pw-watch"), warm_up_limit=8, end_grace=8)
    cell = watch.cells["test_cluster_ip[same-node-tcp]"]
    before, during_cmd = cell.windows
    assert before.start < -1.0 and before.end < 0  # answered before CMD began
    assert during_cmd.start == pytest.approx(0, abs=INTERVAL + 0.1)
    assert during_cmd.duration == pytest.approx(1.5, abs=INTERVAL + 0.2)
    assert not cell.broken_at_end and cell.last > during_cmd.end
    warm, end = watch.notes
    assert warm.startswith("warm-up: ") and warm.endswith(" s, until every cell answered")
    assert end.startswith("the watch went on ")
    assert end.endswith(" s after the settle period, until every cell's latest probe answered")


def test_a_cmd_not_found_still_ends_the_watch_with_the_cells_read(switchable, tmp_path):
    port, _ = switchable
    cells = [WatchCell("test_pod_ip[same-node-tcp]", "c0", CLIENT,
                       Target("127.0.0.1", port, "tcp"), "server-a")]
    watch = run_watch(cells, local_exec, "no-such-command-pw", settle=0.2, max_outage=5,
                      warm_up=0.4, directory=str(tmp_path / "pw-watch"))
    assert watch.ran.rc == 127 and "CMD not found (exit 127)" in watch.words()
    cell = watch.cells["test_pod_ip[same-node-tcp]"]
    assert cell.sent >= 3 and cell.windows == ()
    assert watch.failures("test_pod_ip[same-node-tcp]") == []


def test_loops_that_cannot_start_are_a_note_and_their_cells_fail(tmp_path):
    def refusing(src, command, timeout):
        return ExecResult(1, "", "bash: /tmp: Read-only file system", 0.01)

    cells = [WatchCell("test_pod_ip[same-node-tcp]", "c0", CLIENT,
                       Target("127.0.0.1", 1, "tcp"), "server-a")]
    watch = run_watch(cells, refusing, "true", settle=0, max_outage=5, warm_up=0,
                      directory=str(tmp_path / "pw-watch"))
    assert watch.notes == [("the probe loops in client-w1 did not start: exit 1: bash: /tmp: "
                            "Read-only file system")]
    assert watch.failures("test_pod_ip[same-node-tcp]") == [
        "no probe was sent: the watch ended before this cell's loop ran"]


def _inventory(nodes) -> Inventory:
    pods, services = {}, {}
    for index, node in enumerate(nodes, start=1):
        for role, last in (("client", 5), ("server", 6)):
            pods[f"{role}-{node.slug}"] = Pod(f"{role}-{node.slug}", "pw-1", role, node.name,
                                              f"10.244.{index}.{last}", 8080)
        server = f"server-{node.slug}"
        for name, ip in ((server, f"10.96.{index}.1"), (f"{server}-nodeport", f"10.96.{index}.2")):
            services[name] = Service(name, "pw-1", ip, {"http": 8080, "udp": 8081},
                                     {"http": 30080 + index, "udp": 30090 + index}, (server,))
    return Inventory("1", "pw-1", "pw-1-peer", list(nodes), "10.96.0.10", pods, services,
                     groups={name: "core" for name in pods})


def test_the_plan_holds_each_watched_hop_per_placement_and_protocol():
    assert WATCHED == ("pod_ip", "cluster_ip", "node_port_server_node", "node_port_other_node",
                       "dns_connect_by_name")
    cells = plan(_inventory([A, B]), build_placements([A, B]))
    assert len(cells) == 17 and [c.name for c in cells] == [f"c{i}" for i in range(17)]
    by_test = {c.test: c for c in cells}
    cross = by_test["test_cluster_ip[cross-node-udp]"]
    assert (cross.client.pod, cross.target.ip, cross.target.port, cross.answer) == (
        "client-pw-worker", "10.96.2.1", 8081, "server-pw-worker2")
    other = by_test["test_node_port_on_other_node[same-node-tcp]"]
    assert (other.target.ip, other.target.port, other.answer) == (
        B.ip, 30081, "server-pw-worker")  # the server on A, its NodePort on B
    assert by_test["test_pod_ip[same-node-tcp]"].target.ip == "10.244.1.6"
    assert WatchCell.from_json(cross.to_json()) == cross
    by_name = by_test["test_dns_connect_by_name[tcp]"]  # as the test: the client's node's server
    assert (by_name.host, by_name.target.ip, by_name.target.port, by_name.answer) == (
        "server-pw-worker", "10.96.1.1", 8080, "server-pw-worker")
    assert WatchCell.from_json(by_name.to_json()) == by_name and cross.host == "10.96.2.1"


def test_the_plan_leaves_out_what_cannot_run():
    refused = _inventory([A, B])
    refused.skips[NODE_PORT] = "the cluster refused Service pw-1/server-pw-worker-nodeport"
    assert {c.test.split("[")[0] for c in plan(refused, build_placements([A, B]))} == {
        "test_pod_ip", "test_cluster_ip", "test_dns_connect_by_name"}
    alone = plan(_inventory([A]), build_placements([A]))
    assert sorted(c.test for c in alone) == sorted(
        [f"{test}[same-node-{p}]" for test in ("test_pod_ip", "test_cluster_ip",
                                               "test_node_port_on_server_node")
         for p in ("tcp", "udp")] + ["test_dns_connect_by_name[tcp]"])


def test_the_cells_kube_proxy_broken_on_the_client_node_should_redden():
    """What the lab proof of issue 16 is to show: the watched cells the static run finds
    red under kube-proxy-broken --node pw-worker (the client's node), i.e. those through
    its Service rules; every other watched cell must show no outage."""
    from tests.unit.test_selfcheck_expected import TYPED

    typed = TYPED["kube-proxy-broken"]
    red = typed.failing.union(*typed.blocked.values())
    watched = {c.test for c in plan(_inventory([A, B]), build_placements([A, B]))}
    assert watched & red == {
        *(f"test_cluster_ip[{p}-{proto}]" for p in ("same-node", "cross-node")
          for proto in ("tcp", "udp")),
        "test_node_port_on_server_node[same-node-tcp]",
        "test_node_port_on_server_node[same-node-udp]",
        "test_node_port_on_other_node[cross-node-tcp]",
        "test_node_port_on_other_node[cross-node-udp]",
        "test_dns_connect_by_name[tcp]"}  # through the same ClusterIP on pw-worker
    assert len(watched - red) == 8  # PodIP, and the NodePorts DNATed on pw-worker2


def test_an_interrupted_watch_stops_cmd_and_its_loops_and_hands_on_what_it_saw(switchable, sigint,
                                                                              tmp_path):
    import signal

    port, _ = switchable
    directory = tmp_path / "pw-watch"
    cells = [WatchCell("test_pod_ip[same-node-tcp]", "c0", CLIENT,
                       Target("127.0.0.1", port, "tcp"), "server-a")]
    timer = threading.Timer(1.2, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as caught:
        run_watch(cells, local_exec, "sleep 30", settle=30, max_outage=5, warm_up=0.5,
                  directory=str(directory))
    assert time.monotonic() - started < 8  # neither CMD nor the settle period waited for
    watch = caught.value.watch
    assert watch.ran.interrupted and not watch.settled
    assert watch.words().startswith("watch: CMD was interrupted after ")
    assert "; interrupted before the 30 s settle period ended; 1 cells" in watch.words()
    assert watch.cells["test_pod_ip[same-node-tcp]"].sent >= 5
    assert (directory / "lease").read_text().strip() == "0"
    assert subprocess.run(["pgrep", "-f", f"{directory}/[c]0.log"], check=False,
                          capture_output=True).stdout == b""  # the loop ended
