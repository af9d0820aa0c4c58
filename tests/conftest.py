"""Fixtures shared by every test: real redis-server and Gunicorn processes on free ports.

Everything started here is torn down even when the test fails. A tool that the suite
needs and that is missing fails the run in CI (CI=true) and skips locally with a reason.

The run leaves nothing behind outside the checkout: pytest's base temp dir is
`.pytest-tmp/run-<pid>` (removed by the next run once that pid has ended), TMPDIR is
`.pytest-tmp/run-<pid>-tmp` for this process and everything it starts, and a session-scoped
check at the end fails when anything is left in that TMPDIR or any process started by the run
is still alive (see tests/hygiene.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.procs import GunicornService, RedisServer
from common.settings import REPO_ROOT
from tests import hygiene

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BASETEMP = REPO_ROOT / ".pytest-tmp"


def find_tool(path_or_name: str) -> str | None:
    """An executable the way the shell finds it: an absolute path as is, a bare name on PATH.

    A relative path is never looked up in the working directory: the repository has a
    `prometheus/` folder, which is not the prometheus binary.
    """
    if os.path.isabs(path_or_name):
        ok = os.path.isfile(path_or_name) and os.access(path_or_name, os.X_OK)
        return path_or_name if ok else None
    if os.sep in path_or_name:
        return None
    return shutil.which(path_or_name)


def require_tool(path_or_name: str, why: str) -> str:
    """Path of a binary the test needs: fail in CI, skip locally when it is missing."""
    found = find_tool(path_or_name)
    if found:
        return found
    message = f"{path_or_name} not found: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def remove_dead_runs(base: Path) -> None:
    """Temp dirs of earlier runs (`run-<pid>`, `run-<pid>-tmp`) whose process has ended."""
    for path in base.glob("run-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tool(name, why): needs this executable; checked before any fixture starts "
                   "(skip locally, fail in CI)")
    config.addinivalue_line(
        "markers", "embedded_redis: runs on the Redis that ships in a pip dependency")
    # A per-run base temp dir inside the checkout, and TMPDIR beneath it for this process and
    # every child (Gunicorn, Streamlit, Chromium profiles), so the leak check sees all of it.
    if config.option.basetemp is None:  # one per run, so runs side by side do not collide
        remove_dead_runs(BASETEMP)
        config.option.basetemp = str(BASETEMP / f"run-{os.getpid()}")
    base = Path(config.option.basetemp).resolve()
    run_tmp = base.parent / f"{base.name}-tmp"  # beside pytest's basetemp, which it clears
    shutil.rmtree(run_tmp, ignore_errors=True)
    run_tmp.mkdir(parents=True)
    os.environ["TMPDIR"] = str(run_tmp)
    tempfile.tempdir = str(run_tmp)
    config.stash[hygiene.RUN_TMP_KEY] = run_tmp


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.tool(...)` is checked before the test's fixtures start a whole stack."""
    for mark in item.iter_markers("tool"):
        require_tool(*mark.args, **mark.kwargs)


@pytest.fixture(scope="session", autouse=True)
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up first, torn down last: fails the run if anything it started is still around."""
    run_tmp: Path = request.config.stash[hygiene.RUN_TMP_KEY]
    before = hygiene.listing(run_tmp)
    yield
    report = hygiene.check(run_tmp, before)
    if report:
        pytest.fail("the test run left things behind:\n" + report, pytrace=False)


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator:
    """Start any number of real redis-servers (AOF, appendfsync always) for one test."""
    started: list[RedisServer] = []

    def make(name: str = "redis", **kwargs) -> RedisServer:
        server = RedisServer(tmp_path / f"{name}-{len(started)}", name=name, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
def redis_server(redis_factory) -> RedisServer:
    return redis_factory()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator:
    """Start real Gunicorn services; their logs are printed when a test fails."""
    started: list[GunicornService] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir(exist_ok=True)

    def make(name: str, app: str, env: dict[str, str], wait: bool = True, **kwargs):
        svc = GunicornService(name, app, env, log_dir=log_dir, **kwargs)
        started.append(svc)
        return svc.start(wait=wait)

    yield make
    for svc in started:
        svc.stop(timeout=5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator:
    """The whole local stack (3 nodes, 3 substations, balancer) on free ports, once per session."""
    from stack.local import LocalStack

    workdir = tmp_path_factory.mktemp("stack")
    running = LocalStack(workdir).start()
    try:
        yield running
    finally:
        running.stop()
