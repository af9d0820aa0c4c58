"""The whole stack as plain child processes on free ports, for the test suite.

Same service definitions as `make up` (stack.services), but no supervisor, random tokens and
free ports, so it can run beside a developer's `make up`. stop() always cleans up, also after a
start() that failed half way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from common.procs import Abort, Proc, free_port, metrics_dir, wait_until
from common.redis_bin import redis_server_path
from stack.health import healthy
from stack.services import (
    GRID_REDIS,
    GUNICORN,
    NODE_REDIS,
    NODES,
    REDIS,
    SPEC_PORTS,
    SUBSTATION_NAMES,
    TUNABLES,
    Layout,
    Service,
    by_name,
    write_local_prometheus_config,
)

# Start in waves; each wave is healthy before the next starts.
WAVES = ((*NODE_REDIS, GRID_REDIS), (*NODES, *SUBSTATION_NAMES), ("balancer",))


def _free_ports(names) -> dict[str, int]:
    ports: dict[str, int] = {}
    for name in names:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


class LocalStack:
    """Redis x4, node1..3, substation1..3, balancer (+ panel, + Prometheus) on free ports."""

    def __init__(self, workdir: Path, workers: int = 2, tunables: dict[str, str] | None = None,
                 scrape_interval: str = "1s"):
        self.workdir = Path(workdir)
        self.log_dir = self.workdir / "logs"
        self.cluster_token = secrets.token_urlsafe(24)
        self.admin_token = secrets.token_urlsafe(24)
        self.ports = _free_ports(SPEC_PORTS)
        self.scrape_interval = scrape_interval
        self.layout = Layout(
            ports=self.ports,
            cluster_token=self.cluster_token,
            admin_token=self.admin_token,
            data_dir=str(self.workdir / "data"),
            prometheus_config=str(self.workdir / "prometheus.yml"),
            tunables={**TUNABLES, "WEB_CONCURRENCY": str(workers), **(tunables or {})},
            redis_server=redis_server_path(),
            prometheus=shutil.which("prometheus") or "prometheus",
        )
        self.services: dict[str, Service] = by_name(self.layout)
        self.procs: dict[str, Proc] = {}

    # -- addresses ---------------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        """Base URL of every started HTTP service (node1..3, substation1..3, balancer, ...)."""
        return {name: self.layout.url(name) for name in self.procs
                if self.services[name].kind != REDIS and name != "prometheus"}

    @property
    def node_urls(self) -> list[str]:
        return [self.layout.url(node) for node in NODES]

    @property
    def redis_urls(self) -> dict[str, str]:
        return {name: self.layout.redis_url(name) for name in (*NODE_REDIS, GRID_REDIS)}

    @property
    def prometheus_url(self) -> str | None:
        running = "prometheus" in self.procs and self.procs["prometheus"].running
        return self.layout.url("prometheus") if running else None

    def env_for(self, name: str) -> dict[str, str]:
        """The environment the service gets (a copy), e.g. to start a second balancer."""
        return dict(self.services[name].env)

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.procs[name].log_tail(lines) if name in self.procs else ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, panel: bool = False, prometheus: bool = False) -> LocalStack:
        waves = [*WAVES, *((("panel",),) if panel else ()),
                 *((("prometheus",),) if prometheus else ())]
        try:
            for wave in waves:
                for name in wave:
                    self._spawn(name)
                for name in wave:
                    self.wait_healthy(name)
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self, name: str, timeout: float = 30.0) -> None:
        """Start (or restart) one service with its usual definition and wait until healthy."""
        self._spawn(name)
        self.wait_healthy(name, timeout)

    def _spawn(self, name: str) -> Proc:
        old = self.procs.get(name)
        if old is not None and old.running:
            raise RuntimeError(f"{name} is already running")
        svc = self.services[name]
        if svc.data_dir:
            Path(svc.data_dir).mkdir(parents=True, exist_ok=True)
        if name == "prometheus":
            self._write_prometheus_config()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        proc = Proc(name, list(svc.argv), env=svc.env, log_path=self.log_dir / f"{name}.log")
        # Each Gunicorn service gets its multiprocess-metrics dir in this stack's workdir (not
        # one Gunicorn makes in the system temp dir, which a SIGKILL would leak); an inherited
        # one would be shared between services.
        proc.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if svc.kind == GUNICORN:
            proc.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(self.workdir / "metrics", name))
        self.procs[name] = proc.start()
        return proc

    def _write_prometheus_config(self) -> None:
        if shutil.which(self.layout.prometheus) is None:
            raise FileNotFoundError("prometheus is not on PATH (apt-get install prometheus)")
        write_local_prometheus_config(self.layout, self.scrape_interval)

    def wait_healthy(self, name: str, timeout: float = 30.0) -> None:
        svc, proc = self.services[name], self.procs[name]

        def ready() -> bool:
            if not proc.running:
                raise Abort(f"{name} exited (code {proc.popen.returncode}):\n{proc.log_tail()}")
            return healthy(svc)

        wait_until(ready, timeout=timeout, interval=0.1, message=f"{name} healthy")

    def kill(self, name: str) -> None:
        """SIGKILL the service's whole process group, as a crash; it stays down."""
        self.procs[name].kill()

    def stop_service(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM one service (SIGKILL after `timeout`); it stays stopped."""
        self.procs[name].stop(timeout=timeout)

    def restart(self, name: str, timeout: float = 30.0) -> None:
        """Stop (gracefully) if running, then start again on the same port."""
        self.stop_service(name)
        self.start_service(name, timeout)

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM everything at once, SIGKILL what is still alive after `timeout` s."""
        procs = list(self.procs.values())
        for proc in reversed(procs):
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            if proc.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            # Whatever is left of the group (e.g. a worker outliving its master).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(5)
