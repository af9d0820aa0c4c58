"""`make up`: the whole stack under supervisord, in the foreground.

This process writes the configs, runs supervisord as its child, prints the URLs once every
service is healthy, and on Ctrl-C/SIGTERM has supervisord stop everything; whatever is still
alive after STOP_DEADLINE_S is SIGKILLed by process group, so nothing outlives `make up`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from common.redis_bin import redis_server_path
from common.settings import REPO_ROOT, ConfigError
from stack.config import StackSettings, load_settings
from stack.health import healthy
from stack.services import (
    PROMETHEUS,
    REDIS,
    SPEC_PORTS,
    Layout,
    Service,
    services,
    write_local_prometheus_config,
)
from stack.supervisor import NotRunning, process_infos, supervisord_conf

STOP_DEADLINE_S = 8.0
PR_SET_PDEATHSIG = 1
HEALTH_TIMEOUT_S = 120.0
PROMETHEUS_HINT = ("prometheus is not on PATH, so it was not started: install it "
                   "(Debian/Ubuntu: sudo apt-get install prometheus; macOS: brew install "
                   "prometheus) and run make up again")


def say(text: str) -> None:
    print(text, flush=True)


def local_layout(settings: StackSettings) -> Layout:
    ports = {name: port + settings.port_offset for name, port in SPEC_PORTS.items()}
    if max(ports.values()) > 65535:
        raise ConfigError(f"GRIDCLOCK_PORT_OFFSET={settings.port_offset} is too large")
    return Layout(
        ports=ports,
        cluster_token=settings.cluster_token,
        admin_token=settings.admin_token,
        data_dir=str(settings.data_dir),
        prometheus_config=str(settings.run_dir / "prometheus.yml"),
        tunables=settings.tunables,
        redis_server=redis_server_path(),
        prometheus=shutil.which("prometheus") or "prometheus",
    )


def service_url(svc: Service, layout: Layout) -> str:
    return layout.redis_url(svc.name) if svc.kind == REDIS else layout.url(svc.name)


def port_busy(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Gunicorn and Redis do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def service_row(svc: Service, layout: Layout) -> dict:
    """What `make ps` knows of a service (stack.json)."""
    return {"name": svc.name, "kind": svc.kind, "port": svc.port,
            "health_path": svc.health_path, "url": service_url(svc, layout)}


def write_run_files(settings: StackSettings, layout: Layout, svcs: list[Service],
                    color: bool, rows: list[dict] | None = None) -> Path:
    """supervisord.conf, prometheus.yml and stack.json (what `make ps` reads) under run/."""
    run_dir = settings.run_dir
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    for svc in svcs:
        if svc.data_dir:
            Path(svc.data_dir).mkdir(parents=True, exist_ok=True)
    if any(svc.kind == PROMETHEUS for svc in svcs):
        write_local_prometheus_config(layout)
    state = rows if rows is not None else [service_row(svc, layout) for svc in svcs]
    (run_dir / "stack.json").write_text(json.dumps({"services": state}, indent=1) + "\n")
    conf = run_dir / "supervisord.conf"
    # It holds the services' environments, tokens included: readable by the owner only.
    conf.touch(mode=0o600, exist_ok=True)
    conf.chmod(0o600)
    conf.write_text(supervisord_conf(svcs, run_dir, color=color))
    return conf


def banner(svcs: list[Service], layout: Layout, missing_prometheus: bool) -> str:
    width = max(len(svc.name) for svc in svcs)
    lines = ["", "GridClock is up:"]
    lines += [f"  {svc.name:<{width}}  {service_url(svc, layout)}" for svc in svcs]
    if missing_prometheus:
        lines.append(f"  hint: {PROMETHEUS_HINT}")
    lines += ["  not started here: Grafana (docker compose up --build), Locust (make loadtest)",
              "  make ps | make stop SVC=node2 | make start SVC=node2 | make kill SVC=node2 | "
              "Ctrl-C stops everything", ""]
    return "\n".join(lines)


def _stop_with_parent() -> None:
    """In supervisord's child before exec: on Linux, SIGTERM it if `make up` itself dies (even
    by SIGKILL), so it shuts the stack down instead of running on unattended."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Runner:
    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.layout = local_layout(settings)
        all_services = services(self.layout)
        self.missing_prometheus = shutil.which("prometheus") is None
        self.svcs = [svc for svc in all_services
                     if not (svc.kind == PROMETHEUS and self.missing_prometheus)]
        self.supervisord: subprocess.Popen | None = None
        self.stop_requested_at: float | None = None
        self.pids: set[int] = set()  # the programs' pids (= process group ids) last seen

    def preflight(self) -> None:
        try:
            process_infos(self.settings.socket_path)
        except NotRunning:
            pass
        else:
            raise ConfigError("the stack is already running (see `make ps`); stop it first, "
                              "or use GRIDCLOCK_RUN_DIR/GRIDCLOCK_PORT_OFFSET for a second one")
        busy = [f"{svc.name}:{svc.port}" for svc in self.svcs if port_busy(svc.port)]
        if busy:
            raise ConfigError(f"ports already in use: {', '.join(busy)}; free them or set "
                              "GRIDCLOCK_PORT_OFFSET (e.g. 100) to shift every port")

    # Hooks for `make up-hosts` (stack/hosts.py), where services live at their own addresses.
    def rows(self) -> list[dict]:
        return [service_row(svc, self.layout) for svc in self.svcs]

    def healthy(self, svc: Service) -> bool:
        return healthy(svc, timeout=0.5)

    def banner(self) -> str:
        return banner(self.svcs, self.layout, self.missing_prometheus)

    def _on_signal(self, signum, frame) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
            say(f"stopping every service ({signal.Signals(signum).name})...")
        if self.supervisord is not None and self.supervisord.poll() is None:
            self.supervisord.send_signal(signal.SIGTERM)

    def _refresh_pids(self) -> None:
        try:
            self.pids = {info["pid"] for info in process_infos(self.settings.socket_path)
                         if info["pid"]}
        except (NotRunning, OSError):
            pass

    def run(self) -> int:
        self.preflight()
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        conf = write_run_files(self.settings, self.layout, self.svcs, color, self.rows())
        if self.settings.wrote_dotenv:
            say("wrote .env with random CLUSTER_TOKEN and ADMIN_TOKEN")
        if self.missing_prometheus:
            say(f"hint: {PROMETHEUS_HINT}")
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        env = {key: value for key, value in os.environ.items()
               if key != "PROMETHEUS_MULTIPROC_DIR"}  # each service has its own (supervisor.py)
        # supervisord writes to our stdout, and so does the log listener through /dev/stdout
        # (a second open file): on a regular file only O_APPEND keeps them from overwriting.
        with contextlib.suppress(OSError, ValueError):
            if stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode):
                flags = fcntl.fcntl(sys.stdout.fileno(), fcntl.F_GETFL)
                fcntl.fcntl(sys.stdout.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.supervisord = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
            cwd=REPO_ROOT, env=env, preexec_fn=_stop_with_parent)
        try:
            self._supervise()
        finally:
            self._reap()
        return 0 if self.stop_requested_at is not None else (self.supervisord.returncode or 1)

    def _supervise(self) -> None:
        """Until supervisord exits: print the URLs once all is healthy, track the pids."""
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        pending = list(self.svcs)
        last_refresh = 0.0
        while self.supervisord.poll() is None:
            now = time.monotonic()
            if self.stop_requested_at is not None:
                if now - self.stop_requested_at > STOP_DEADLINE_S:
                    return
                if last_refresh < self.stop_requested_at:  # catch a pid restarted just now
                    last_refresh = now
                    self._refresh_pids()
            elif now - last_refresh > 1.0:
                last_refresh = now
                self._refresh_pids()
                if pending:
                    pending = [svc for svc in pending if not self.healthy(svc)]
                    if not pending:
                        say(self.banner())
                    elif now > deadline:
                        names = ", ".join(svc.name for svc in pending)
                        say(f"still not healthy after {HEALTH_TIMEOUT_S:.0f}s: {names} "
                            f"(logs: {self.settings.run_dir / 'logs'})")
                        deadline = float("inf")  # say it once
            time.sleep(0.1)

    def _reap(self) -> None:
        """If supervisord did not stop cleanly: SIGKILL it and every program group it ran."""
        if self.supervisord.poll() == 0:
            return  # it stopped every program itself (killasgroup)
        if self.supervisord.poll() is None:
            self.supervisord.kill()
            self.supervisord.wait()
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def main() -> int:
    try:
        return Runner(load_settings(write_dotenv=True)).run()
    except (ConfigError, FileNotFoundError) as exc:
        print(f"make up: {exc}", file=sys.stderr)
        return 2
