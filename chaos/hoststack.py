"""A `make up-hosts` stack of our own for one chaos run: started as `python -m stack up-hosts`
with a private run and data directory, driven through its supervisord, stopped at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from common.procs import Abort, wait_until
from common.settings import REPO_ROOT
from stack import control, netns
from stack.health import http_ok
from stack.supervisor import process_infos
from stack.up import _stop_with_parent  # SIGTERM up-hosts (it cleans up) if we die

LEFT_OUT = ("panel", "prometheus")  # nothing to check there; spare the two cores


class StackBusy(RuntimeError):
    """Namespaces with our prefix exist already: someone else's; never touch them."""


class HostsStack:
    def __init__(self, workdir: Path, prefix: str, subnet: str, tunables: dict[str, str]):
        self.workdir = workdir
        self.run_dir = workdir / "run"
        self.data_dir = workdir / "data"
        self.prefix, self.subnet = prefix, subnet
        self.env = {**os.environ, "GRIDCLOCK_RUN_DIR": str(self.run_dir),
                    "GRIDCLOCK_DATA_DIR": str(self.data_dir), "GRIDCLOCK_NETNS_PREFIX": prefix,
                    "GRIDCLOCK_NETNS_SUBNET": subnet, "NO_COLOR": "1",
                    "CLUSTER_TOKEN": secrets.token_urlsafe(18),
                    "ADMIN_TOKEN": secrets.token_urlsafe(18),
                    # Services' temp files (e.g. metrics dirs of a SIGKILLed Gunicorn) stay in
                    # the workdir, which goes at the end.
                    "TMPDIR": str(workdir / "tmp"), **tunables}
        self.proc: subprocess.Popen | None = None
        self.rows: dict[str, dict] = {}
        self.owns_prefix = False

    def start(self, timeout: float = 150.0) -> HostsStack:
        if any(netns.leftovers(self.prefix).values()):
            raise StackBusy(f"hosts named {self.prefix}* exist already (a running `make "
                            "up-hosts` or `make chaos`, or leftovers: `make down-hosts`); set "
                            "GRIDCLOCK_NETNS_PREFIX and GRIDCLOCK_NETNS_SUBNET for a second one")
        self.owns_prefix = True
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "up-hosts.log", "wb")  # noqa: SIM115 - child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stack", "up-hosts", "--without", ",".join(LEFT_OUT)],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_stop_with_parent)
        try:
            wait_until(self._all_healthy, timeout=timeout, interval=0.5,
                       message="every service of up-hosts healthy")
        except BaseException:
            self.stop()
            raise
        return self

    def _all_healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise Abort(f"up-hosts exited ({self.proc.returncode}):\n{self.log_tail()}")
        rows = control.status(self.run_dir)
        self.rows = {row["name"]: row for row in rows}
        return all(row["health"] == "healthy" for row in rows)

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "up-hosts.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- addresses -------------------------------------------------------------------------
    def url(self, name: str) -> str:
        return self.rows[name]["url"]

    def address(self, name: str) -> str:
        return self.rows[name]["address"]

    def netns(self, name: str) -> str:
        return f"{self.prefix}{self.rows[name]['host']}"

    @property
    def namespaces(self) -> list[str]:
        return sorted({self.netns(name) for name in self.rows})

    # -- processes -------------------------------------------------------------------------
    def pid(self, name: str) -> int | None:
        info = next(i for i in process_infos(self.run_dir / "supervisor.sock")
                    if i["name"] == name)
        return info["pid"] if info["statename"] == "RUNNING" and info["pid"] else None

    def signal(self, name: str, sig: int) -> int | None:
        """Signal the service's whole process group (its pid is the group id)."""
        pid = self.pid(name)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
        return pid

    def stop_service(self, name: str) -> None:
        with contextlib.suppress(control.ControlError):
            control.stop(self.run_dir, name)

    def start_service(self, name: str) -> None:
        with contextlib.suppress(control.ControlError):  # e.g. already running
            control.start(self.run_dir, name)

    def healthy(self, name: str, timeout: float = 2.0) -> bool:
        """This one service answers (a loaded machine needs more than `make ps`' 0.5 s)."""
        if self.pid(name) is None:
            return False
        url = self.rows[name]["url"]
        if url.startswith("redis://"):
            import redis

            try:
                return bool(redis.Redis.from_url(url, socket_timeout=timeout,
                                                 socket_connect_timeout=timeout).ping())
            except redis.RedisError:
                return False
        return http_ok(f"{url}/health", timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self.owns_prefix:
            return
        netns.destroy_prefix(self.prefix, grace_s=2.0)  # whatever a failure left behind
        wait_until(lambda: not any(netns.leftovers(self.prefix).values()), timeout=20,
                   interval=0.2, message=f"no {self.prefix}* left")
