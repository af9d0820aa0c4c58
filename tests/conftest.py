"""Fixtures shared by every test: real redis-server and Gunicorn processes on free ports.

Everything started here is torn down even when the test fails. A tool that the suite
needs and that is missing fails the run in CI (CI=true) and skips locally with a reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.procs import GunicornService, RedisServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(path_or_name: str, why: str) -> str:
    """Path of a binary the test needs: fail in CI, skip locally when it is missing."""
    found = path_or_name if os.path.exists(path_or_name) else shutil.which(path_or_name)
    if found:
        return found
    message = f"{path_or_name} not found: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


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
