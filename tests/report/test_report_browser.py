"""The report as a reviewer sees it: a real suite run on the lab, opened in headless chromium.

Checks that the matrix and the verdict are in the rendered DOM (pytest-html
builds the test table with JavaScript, so the file's text alone proves
little) and keeps a screenshot under reports/ as the CI artifact.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from packetwalk import aboutlab
from tests.suiterun import ROOT, run_pytest

REPORTS = ROOT / "reports"
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                                "chromium)"),
    pytest.mark.skipif(aboutlab.read() is None, reason="the lab is not up"),
]


def chromium(url: str, profile: Path, *extra: str) -> str:
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def report() -> Path:
    REPORTS.mkdir(exist_ok=True)
    html = REPORTS / "browser-check.html"
    # --load-balancer: the Service is made (the lab offers no load balancer, nothing
    # gets an address), so its cell says why it is not offered.
    run = run_pytest("suites", "-n", "auto", "--load-balancer", f"--html={html}", timeout=900)
    assert html.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return html


def test_matrix_and_verdict_render(report, tmp_path):
    dom = chromium(report.as_uri(), tmp_path / "profile", "--dump-dom")
    assert '<table id="pw-matrix">' in dom
    assert 'id="pw-verdict"><b>Verdict:</b>' in dom
    for hop in ("pod_ip", "cluster_ip", "egress_nat", "node_port_external_local"):
        assert f"<th>{hop}</th>" in dom
    # The load balancer is not offered on the lab: its cell skips and says why on hover.
    assert "no LoadBalancer offered" in dom
    # The results table is built by pytest-html's script: rows exist only if it ran.
    assert 'class="col-testId"' in dom and "test_egress_nat[cross-node]" in dom
    assert "<svg" in dom


def test_screenshot_is_kept(report, tmp_path):
    shot = REPORTS / "browser-check.png"
    shot.unlink(missing_ok=True)
    chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={shot}",
             "--window-size=1400,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained(report):
    text = report.read_text()
    assert '<link rel="stylesheet"' not in text and "assets/" not in text
    assert report.with_suffix(".json").is_file()


def test_a_watch_draws_its_timeline(tmp_path):
    """--during: the report and the watch's own page show the timeline, a row per
    watched cell, CMD's start and end marked. CMD changes nothing here: no outage."""
    REPORTS.mkdir(exist_ok=True)
    html = REPORTS / "browser-check-watch.html"
    run = run_pytest("suites/east_west", "-n", "auto", "--during", "sleep 3", "--settle", "2s",
                     f"--html={html}", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "measured: every 0.2 s asked; " in run.stdout
    page = REPORTS / "browser-check-watch.watch.html"
    for shown in (html, page):
        dom = chromium(shown.as_uri(), tmp_path / f"profile-{shown.stem}", "--dump-dom")
        assert 'id="pw-timeline"' in dom and ">CMD start<" in dom and ">CMD end<" in dom
        assert dom.count('class="pw-row"') == 17
    shot = REPORTS / "browser-check-watch.png"
    shot.unlink(missing_ok=True)
    chromium(page.as_uri(), tmp_path / "profile", f"--screenshot={shot}",
             "--window-size=1100,500")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
