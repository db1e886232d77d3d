"""The suite's own bad input, on the lab: an image no node can pull stops the
run at session start with one line, counts no test, and leaves nothing behind.
(An unreachable API server, an unknown context and missing RBAC: tests/unit and
tests/lab/test_rbac.py.)
"""

import pytest

from tests.suiterun import run_pytest

from .conftest import eventually, suite_namespaces


def test_an_image_no_node_can_pull_is_one_line(lab):
    image = "registry.k8s.io/e2e-test-images/agnhost:0.0-does-not-exist"
    r = run_pytest("suites/east_west", "-n", "auto", f"--image={image}", "--ready-timeout=150",
                   timeout=300)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    # The whole output is that one line: no traceback, no test counted.
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: packetwalk: ") and (
        f"image {image} cannot be pulled" in lines[0]), out[-3000:]
    # Deleted at the end; the cluster removes them (nothing waits by default).
    gone, left = eventually(lambda: (not suite_namespaces(), suite_namespaces()), timeout=60)
    assert gone, left
