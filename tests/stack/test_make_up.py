"""`make up` end to end: `python -m stack up` in the foreground under supervisord, on shifted
ports with its own data and run directories, driven with `python -m stack ps|kill|stop|start`.

Checks the issue's promises: every service healthy, output prefixed by service, a killed
service back within 5 s with a new pid, stop keeps it stopped, SIGTERM leaves no process and
no listener within 10 s, and the KV data survives a restart of the whole stack.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.procs import wait_until
from common.settings import REPO_ROOT
from stack.services import SPEC_PORTS
from stack.up import port_busy

from .stack_run import StackRun

pytestmark = pytest.mark.slow


def pick_offset() -> int:
    for _ in range(100):
        offset = random.randrange(10_000, 50_000, 10)
        if not any(port_busy(port + offset) for port in SPEC_PORTS.values()):
            return offset
    raise RuntimeError("no free block of ports for the stack")


def session_pids(sid: int) -> set[int]:
    """Live processes of session `sid` (everything `make up` started stays in its session)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids


class Up(StackRun):
    """`python -m stack up`, which stops on SIGTERM like Ctrl-C."""

    def __init__(self, env: dict[str, str]):
        super().__init__(env, ["up"], "GridClock is up:")

    def terminate(self) -> float:
        """SIGTERM like Ctrl-C would; seconds until no process of the session is left."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not session_pids(self.proc.pid) and self.proc.poll() is not None,
                   timeout=15, interval=0.1, message="every process of make up gone")
        return time.monotonic() - started

    def cleanup(self) -> None:
        for pid in session_pids(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(10)


def run_readme_tour(env: dict[str, str], offset: int, admin_token: str) -> str:
    """The README's one-minute tour as a new user would paste it (ports shifted by `offset`,
    `make X SVC=Y` run as `python -m stack X Y`, which is all those make targets do)."""
    readme = (REPO_ROOT / "README.md").read_text()
    script = readme.split("## A one-minute tour", 1)[1].split("```sh\n", 1)[1].split("```")[0]
    script = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{int(m[1]) + offset}", script)
    script = re.sub(r"\bmake (\w+)(?: SVC=(\S+))?",
                    lambda m: f"{sys.executable} -m stack {m[1]} {m[2] or ''}", script)
    workdir = Path(env["GRIDCLOCK_RUN_DIR"]).parent / "tour"
    workdir.mkdir()
    (workdir / ".env").write_text(f"ADMIN_TOKEN={admin_token}\n")
    result = subprocess.run(["bash", "-e", "-c", script], cwd=workdir, capture_output=True,
                            text=True, timeout=120, env={**env, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDCLOCK_")}
    env.update(GRIDCLOCK_PORT_OFFSET=str(pick_offset()),
               GRIDCLOCK_DATA_DIR=str(tmp_path / "data"),
               GRIDCLOCK_RUN_DIR=str(tmp_path / "run"),
               CLUSTER_TOKEN="test-cluster-token", ADMIN_TOKEN="test-admin-token",
               WEB_CONCURRENCY="1", NO_COLOR="1")
    yield env


def test_make_up_runs_supervises_and_stops_the_whole_stack(up_env):
    offset = int(up_env["GRIDCLOCK_PORT_OFFSET"])
    node1 = f"http://127.0.0.1:{SPEC_PORTS['node1'] + offset}"
    up = Up(up_env)
    try:
        up.wait_up()
        rows = up.ps()
        assert all(row["state"] == "RUNNING" and row["health"] == "healthy"
                   for row in rows.values()), rows
        assert {name for name in rows} >= {"node1", "redis-node1", "balancer", "panel"}
        for name, row in rows.items():
            assert row["port"] == SPEC_PORTS[name] + offset
            assert row["url"] in up.output  # the banner lists every URL
        assert re.search(r"^node1\s+\| ", up.output, re.M), "no output prefixed by service"
        assert re.search(r"^redis-grid\s+\| ", up.output, re.M)

        resp = requests.put(f"{node1}/kv/persisted", json={"value": "kept"}, timeout=5)
        assert resp.status_code == 200, resp.text

        # A crash: SIGKILL of the whole process group; supervisord restarts it.
        old_pid = rows["node2"]["pid"]
        result = up.ctl("kill", "node2")
        assert result.returncode == 0, result.stderr
        killed_at = time.monotonic()
        wait_until(lambda: up.ps()["node2"]["pid"] not in (None, old_pid), timeout=5,
                   interval=0.2, message="node2 restarted with a new pid")
        assert time.monotonic() - killed_at < 5
        wait_until(lambda: up.ps()["node2"]["health"] == "healthy", timeout=30, interval=0.3,
                   message="node2 healthy again")

        # stop keeps it stopped (no listener) until start.
        result = up.ctl("stop", "node3")
        assert result.returncode == 0, result.stderr
        assert up.ps()["node3"]["state"] == "STOPPED"
        assert not port_busy(SPEC_PORTS["node3"] + offset)
        result = up.ctl("start", "node3")
        assert result.returncode == 0, result.stderr
        wait_until(lambda: up.ps()["node3"]["health"] == "healthy", timeout=30, interval=0.3,
                   message="node3 healthy after start")

        tour = run_readme_tour(up_env, offset, up_env["ADMIN_TOKEN"])
        for expected in ('"value":"hello"', '"buffer":[{', "HTTP/1.1 503", '"strategy":"p2c"',
                         "killed with SIGKILL", "node2"):
            assert expected in tour, f"README tour: no {expected!r} in\n{tour}"

        bad = up.ctl("kill", "nosuch")
        assert bad.returncode == 1 and "unknown service 'nosuch'" in bad.stderr

        assert up.terminate() < 10, up.output
        assert up.proc.returncode == 0
        # Secrets: in the owner-only supervisor config, never in what the stack printed or logged.
        run_dir = Path(up_env["GRIDCLOCK_RUN_DIR"])
        assert (run_dir / "supervisord.conf").stat().st_mode & 0o077 == 0
        logged = up.output + "".join(p.read_text(errors="replace")
                                     for p in (run_dir / "logs").glob("*.log"))
        for token in (up_env["CLUSTER_TOKEN"], up_env["ADMIN_TOKEN"]):
            assert token not in logged
        assert not [name for name, port in SPEC_PORTS.items() if port_busy(port + offset)]
    finally:
        up.cleanup()

    # Same data directory: the KV write is still there after a restart of everything.
    again = Up(up_env)
    try:
        again.wait_up()
        resp = requests.get(f"{node1}/kv/persisted", timeout=5)
        assert resp.status_code == 200 and resp.json()["value"] == "kept", resp.text
        assert again.terminate() < 10
    finally:
        again.cleanup()


def test_ps_and_kill_without_a_running_stack_say_how_to_start_it(up_env):
    for args in (("ps",), ("kill", "node1")):
        result = subprocess.run([sys.executable, "-m", "stack", *args], cwd=REPO_ROOT,
                                env=up_env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert "not running" in result.stderr and "make up" in result.stderr
