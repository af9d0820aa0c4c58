"""The test harness itself: on a machine without the external tools, every test that needs one
skips with the reason locally and fails under CI=true, before it starts anything.

Runs pytest in a subprocess with an empty directory as PATH (the interpreter is called by its
absolute path), on the tests that need prometheus, promtool or chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from common.settings import REPO_ROOT
from tests.conftest import find_tool

OBS = "tests/stack/test_observability_config.py::"
TOOL_TESTS = [
    OBS + "test_local_prometheus_config_with_its_rules_passes_promtool",
    OBS + "test_compose_prometheus_config_passes_promtool",
    OBS + "test_alert_rules_pass_promtool_check_and_their_unit_tests",
    "tests/stack/test_prometheus.py",
    "tests/panel/test_panel_e2e.py",
    "tests/panel/test_panel_large.py",
]
EXPECTED = {"promtool", "prometheus", "chromium"}  # each one named in some reason


def run_without_tools(tmp_path: Path, ci: bool) -> tuple[int, list[tuple[str, str, str]]]:
    """(exit code, [(test, outcome, message)]) of the tool tests with nothing on PATH."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "CHROMIUM", "PYTEST_ADDOPTS")}
    env.update(PATH=str(empty), CI="true" if ci else "")
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            f"--basetemp={tmp_path / 'inner'}", f"--junitxml={report}",
            *TOOL_TESTS]
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=240)
    assert report.exists(), result.stdout + result.stderr
    outcomes = []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        children = [child for child in case if child.tag in ("skipped", "failure", "error")]
        outcome = children[0].tag if children else "passed"
        message = children[0].get("message", "") if children else ""
        outcomes.append((name, outcome, message))
    return result.returncode, outcomes


def test_a_relative_path_is_never_taken_for_a_tool(tmp_path, monkeypatch):
    # the repository has a prometheus/ folder: it is not the prometheus binary
    assert (REPO_ROOT / "prometheus").is_dir()
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("prometheus") is None
    assert find_tool("./prometheus") is None
    fake = tmp_path / "prometheus"
    fake.write_text("#!/bin/sh\n")
    assert find_tool("prometheus") is None  # not executable
    fake.chmod(0o755)
    assert find_tool("prometheus") == str(fake)
    assert find_tool(str(fake)) == str(fake)
    assert find_tool(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_without_tools_every_tool_test_skips_locally_and_fails_in_ci(tmp_path, ci):
    code, outcomes = run_without_tools(tmp_path, ci)
    assert len(outcomes) >= 10, outcomes  # 3 promtool, 2 prometheus, 2 browser, 3 large
    wanted = {"failure", "error"} if ci else {"skipped"}
    assert {outcome for _, outcome, _ in outcomes} <= wanted, outcomes
    named = {tool for tool in EXPECTED if any(tool in message for _, _, message in outcomes)}
    assert named == EXPECTED, outcomes
    assert (code != 0) if ci else (code == 0)


LEAKY_TEST = '''
import subprocess
import sys
import tempfile


def test_that_leaks():
    tempfile.mkdtemp(prefix="leaked-dir-")
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
'''


def test_the_end_of_run_check_names_leaked_temp_dirs_and_processes(tmp_path):
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(LEAKY_TEST)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "tests.conftest",
            "-c", str(REPO_ROOT / "pyproject.toml"), f"--rootdir={REPO_ROOT}",
            f"--basetemp={tmp_path / 'inner'}", str(test_file)]
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "1 passed" in output and "1 error" in output, output
    assert "the test run left things behind" in output, output
    assert "still running: pid" in output and "time.sleep(120)" in output, output
    assert "leaked-dir-" in output, output
    # and the check killed what it found
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "time.sleep(120)" not in ps
