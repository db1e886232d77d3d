"""`--vantage local`: the NodePort probes from outside the cluster run from
where pytest runs (here the host, on the lab's bridge) instead of the lab's
outside namespace, and pass the same way.
"""

from tests.suiterun import run_suites


def test_node_ports_from_where_pytest_runs(lab, tmp_path):
    run = run_suites(tmp_path, "suites/north_south", extra=("-k", "node_port_external",
                                                            "--vantage", "local"))
    assert not run.failed and not run.errors and not run.skipped, run.output[-3000:]
    assert {"test_node_port_external_cluster", "test_node_port_external_local",
            "test_node_port_external_local_no_backend"} <= {t.split("[")[0] for t in run.passed}
