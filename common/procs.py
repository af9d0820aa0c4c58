"""Real processes on free ports: redis-server and Gunicorn services.

Used by the test fixtures and by `make bench`, so both start things the same way.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

from common.redis_bin import redis_server_path
from common.settings import REPO_ROOT

# Ports for our servers come from below the kernel's ephemeral range: a port the kernel hands
# out for port 0 can be taken by any outgoing connection before the server binds it.
PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()
_started_groups: list[int] = []  # every process group started here, for the test leak check


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and not handed out before by this process."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randint(*PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


class Abort(Exception):
    """Raised by a wait_until predicate to stop waiting at once (e.g. the process died)."""


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Abort:
            raise
        except Exception as exc:  # noqa: BLE001 - the predicate may fail until ready
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message}: {last_exc!r}")


def started_groups() -> list[int]:
    """Process group ids of every Proc started by this process so far."""
    return list(_started_groups)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id was reused by someone else's group
        return False
    return True


class Proc:
    """A child process in its own process group, so kill() takes its children too."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path = REPO_ROOT):
        self.name, self.argv, self.cwd = name, argv, cwd
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        _started_groups.append(self.popen.pid)
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class RedisServer(Proc):
    """redis-server with AOF on and fsync on every write, data kept in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "always",
                 name: str = "redis"):
        self.port = port or free_port()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [redis_server_path(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes",
                "--appendfsync", appendfsync, "--save", "", "--protected-mode", "no",
                "--daemonize", "no", "--logfile", ""]
        super().__init__(name, argv, log_path=self.data_dir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self) -> RedisServer:
        super().start()
        wait_until(lambda: self.client().ping(), timeout=10, message=f"{self.name} ping")
        return self


def metrics_dir(work_dir: Path | None, name: str) -> Path:
    """A service's PROMETHEUS_MULTIPROC_DIR inside `work_dir`; without one, a per-process dir
    below the data dir of this checkout (git-ignored), never the system temp dir."""
    base = Path(work_dir) if work_dir else REPO_ROOT / "data" / "metrics" / str(os.getpid())
    path = base / f"metrics-{name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class GunicornService(Proc):
    """A service's Flask app under Gunicorn, configured by environment only."""

    def __init__(self, name: str, app: str, env: dict[str, str], port: int | None = None,
                 log_dir: Path | None = None, workers: int = 2):
        self.port = port or free_port()
        # The multiprocess-metrics dir lives in a directory the caller owns (beside the logs),
        # never one Gunicorn makes in the system temp dir: a SIGKILLed master cannot remove its
        # own. Gunicorn clears it at start, so a restart does not add up old counters.
        self.metrics_dir = metrics_dir(log_dir, f"{name}-{self.port}")
        env = {"PORT": str(self.port), "WEB_CONCURRENCY": str(workers), **env,
               "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)}
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:common.gunicorn_conf", app]
        log_path = (log_dir / f"{name}.log") if log_dir else None
        super().__init__(name, argv, env=env, log_path=log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> GunicornService:
        super().start()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        def healthy() -> bool:
            if not self.running:
                raise Abort(f"{self.name} exited:\n{self.log_tail()}")
            return requests.get(self.url + "/health", timeout=1).status_code == 200

        wait_until(healthy, timeout=timeout, message=f"{self.name} /health")
