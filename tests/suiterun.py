"""Run the suites in a subprocess, as a user would, and read back each id's outcome,
the verdict, the diagnoses and the skip reasons."""

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# PACKETWALK_FULL_MATRIX=1: the lab tests CI leaves to bench/matrix.py run here too.
FULL_MATRIX = os.environ.get("PACKETWALK_FULL_MATRIX") == "1"


def pytest_argv(*args: str) -> list[str]:
    """pytest as a user runs it (from the repository root), without a cache dir."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def run_pytest(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(pytest_argv(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class SuiteRun:
    passed: set[str]
    failed: set[str]
    errors: set[str]
    skipped: dict[str, str]  # id -> its skip reason
    verdict: str
    output: str
    diagnoses: dict[str, dict] = field(default_factory=dict)  # red id -> its diagnosis entry
    # errored id -> its error's text (a blocked test's is its "blocked: ..." line)
    error_texts: dict[str, str] = field(default_factory=dict)
    # ids that failed only as flaky (JUnit flaky=true), and every id's failed attempts
    flaky: set[str] = field(default_factory=set)
    failed_attempts: dict[str, int] = field(default_factory=dict)


def _test_id(case: ET.Element) -> str:
    # JUnit's classname is the module path; pytest's id is what users see: test_x[param].
    return case.get("name", "")


def run_suites(tmp: Path, *paths: str, extra: tuple[str, ...] = (), timeout: float = 600) -> SuiteRun:
    xml = tmp / "junit.xml"
    r = run_pytest(*paths, "-n", "auto", "-q", f"--junitxml={xml}", *extra, timeout=timeout)
    out = r.stdout + r.stderr
    verdicts = [line.split("verdict:", 1)[1].strip() for line in out.splitlines() if line.startswith("verdict:")]
    run = SuiteRun(set(), set(), set(), {}, verdicts[-1] if verdicts else "", out)
    if not xml.exists():
        return run
    for case in ET.parse(xml).getroot().iter("testcase"):
        tid = _test_id(case)
        for prop in case.iter("property"):
            # junitxml writes a user_properties value with str(): a dict's repr.
            if prop.get("name") == "flaky" and prop.get("value") == "true":
                run.flaky.add(tid)
            if prop.get("name") == "failed_attempts" and prop.get("value", "0") != "0":
                run.failed_attempts[tid] = int(prop.get("value"))
            if prop.get("name") == "diagnosis" and (
                    case.find("failure") is not None or case.find("error") is not None):
                run.diagnoses[tid] = ast.literal_eval(prop.get("value", "{}"))
        if case.find("failure") is not None:
            run.failed.add(tid)
        elif case.find("error") is not None:
            run.errors.add(tid)
            run.error_texts[tid] = case.find("error").text or ""
        elif case.find("skipped") is not None:
            run.skipped[tid] = case.find("skipped").get("message", "")
        else:
            run.passed.add(tid)
    return run
