"""`make up-hosts` end to end, as root: every service in its own network namespace on a test
subnet and name prefix (never those of a developer's running `make up-hosts`), driven with
`python -m stack ps|kill|stop|start`; SIGTERM and a SIGKILLed runner both leave nothing behind;
`down-hosts` removes leftovers of its prefix only. Skipped locally without root, failed in CI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.procs import wait_until
from common.settings import REPO_ROOT
from stack import netns

from .netns_hosts import fresh_network, require_root
from .stack_run import StackRun

pytestmark = pytest.mark.slow


def gone(prefix: str) -> bool:
    return not any(netns.leftovers(prefix).values())


def up_hosts(env: dict[str, str], without: str = "panel") -> StackRun:
    return StackRun(env, ["up-hosts", "--without", without], "GridClock is up on hosts")


@pytest.fixture
def hosts_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_root("make up-hosts")
    prefix, subnet = fresh_network("t")
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDCLOCK_")}
    env.update(GRIDCLOCK_NETNS_PREFIX=prefix, GRIDCLOCK_NETNS_SUBNET=subnet,
               GRIDCLOCK_DATA_DIR=str(tmp_path / "data"), GRIDCLOCK_RUN_DIR=str(tmp_path / "run"),
               CLUSTER_TOKEN="test-cluster-token", ADMIN_TOKEN="test-admin-token",
               WEB_CONCURRENCY="1", NO_COLOR="1", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()  # what a SIGKILLed service leaves there goes with tmp_path
    try:
        yield env
    finally:  # whatever happened, nothing of ours stays
        netns.destroy_prefix(prefix, grace_s=2.0)


def netns_of(pid: int) -> str:
    return netns.run("ip", "netns", "identify", str(pid)).strip()


def test_up_hosts_runs_every_service_on_its_own_host_and_removes_them_on_sigterm(hosts_env):
    PREFIX = hosts_env["GRIDCLOCK_NETNS_PREFIX"]
    net = hosts_env["GRIDCLOCK_NETNS_SUBNET"].rsplit(".", 1)[0] + "."
    up = up_hosts(hosts_env)
    try:
        up.wait_up()
        rows = up.ps()
        assert all(row["state"] == "RUNNING" and row["health"] == "healthy"
                   for row in rows.values()), rows
        for name, row in rows.items():
            assert row["address"].startswith(net) and row["address"] in row["url"]
            assert netns_of(row["pid"]) == f"{PREFIX}{row['host']}", name
        assert rows["redis-node1"]["host"] == "node1"
        assert rows["redis-node1"]["address"] == rows["node1"]["address"]
        assert len({rows[n]["address"] for n in ("node1", "node2", "substation1", "balancer",
                                                 "redis-grid")}) == 5
        table = up.ctl("ps").stdout
        assert "HOST" in table.splitlines()[0] and "ADDRESS" in table.splitlines()[0]

        # Replication crosses the bridge: a write at node1 is read at node3.
        node1, node3 = rows["node1"]["url"], rows["node3"]["url"]
        assert requests.put(f"{node1}/kv/hosts", json={"value": "v"}, timeout=5).ok
        wait_until(lambda: requests.get(f"{node3}/kv/hosts", timeout=2).status_code == 200,
                   timeout=10, message="the write replicated to node3")
        # Loopback is no path between services: node2 is not on node1's 127.0.0.1.
        probe = ("import socket,sys; s=socket.socket(); s.settimeout(1); "
                 "sys.exit(s.connect_ex(('127.0.0.1', 5002)) == 0)")
        result = subprocess.run(["ip", "netns", "exec", f"{PREFIX}node1", sys.executable, "-c",
                                 probe], capture_output=True, timeout=10)
        assert result.returncode == 0, "node2 answered on node1's loopback"
        hosts_file = Path(f"/etc/netns/{PREFIX}node1/hosts").read_text()
        assert f"{rows['node2']['address']} node2" in hosts_file
        # The charging path crosses it too: balancer -> substation -> grid Redis.
        resp = requests.post(f"{rows['balancer']['url']}/charge",
                             json={"vehicle_id": "EV-hosts", "power_kw": 7.4}, timeout=5)
        assert resp.status_code == 200, resp.text

        # Prometheus (when installed) scrapes every service across the bridge, by name.
        if "prometheus" in rows:
            def scraped() -> bool:
                targets = requests.get(f"{rows['prometheus']['url']}/api/v1/targets",
                                       timeout=5).json()["data"]["activeTargets"]
                up_ = {t["labels"]["instance"] for t in targets if t["health"] == "up"}
                return up_ >= {"node1", "node2", "node3", "substation1", "balancer"}

            wait_until(scraped, timeout=60, interval=1, message="Prometheus scraping by name")

        # kill: restarted with a new pid, in the same namespace.
        old = rows["node2"]["pid"]
        assert up.ctl("kill", "node2").returncode == 0
        wait_until(lambda: up.ps()["node2"]["pid"] not in (None, old), timeout=10,
                   interval=0.2, message="node2 restarted")
        wait_until(lambda: up.ps()["node2"]["health"] == "healthy", timeout=30, interval=0.3,
                   message="node2 healthy again")
        assert netns_of(up.ps()["node2"]["pid"]) == f"{PREFIX}node2"
        # stop keeps it stopped; start brings it back.
        assert up.ctl("stop", "substation3").returncode == 0
        assert up.ps()["substation3"]["state"] == "STOPPED"
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex((rows["substation3"]["address"], 8003)) != 0
        assert up.ctl("start", "substation3").returncode == 0
        wait_until(lambda: up.ps()["substation3"]["health"] == "healthy", timeout=30,
                   interval=0.3, message="substation3 healthy after start")

        started = time.monotonic()
        up.proc.send_signal(signal.SIGTERM)
        up.proc.wait(30)
        wait_until(lambda: gone(PREFIX), timeout=15, interval=0.2, message=f"no {PREFIX}* left")
        assert time.monotonic() - started < 20
        assert up.proc.returncode == 0, up.output
        assert not Path(f"/etc/netns/{PREFIX}node1").exists()
    finally:
        if up.proc.poll() is None:
            os.killpg(up.proc.pid, signal.SIGKILL)
            up.proc.wait(10)


def test_a_sigkilled_runner_leaves_nothing_and_down_hosts_removes_leftovers(hosts_env):
    PREFIX = hosts_env["GRIDCLOCK_NETNS_PREFIX"]
    OTHER_PREFIX, _ = fresh_network("u")
    up = up_hosts(hosts_env, without="panel,prometheus")
    try:
        up.wait_up()
        pids = [row["pid"] for row in up.ps().values()]
        up.proc.kill()  # the runner only: supervisord and the reaper must clean up
        up.proc.wait(10)
        wait_until(lambda: gone(PREFIX), timeout=30, interval=0.25,
                   message=f"the reaper removed every {PREFIX}* object")

        def all_dead() -> bool:
            return not [pid for pid in pids if Path(f"/proc/{pid}").exists()
                        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]

        wait_until(all_dead, timeout=15, message="every service process gone")
    finally:
        if up.proc.poll() is None:
            os.killpg(up.proc.pid, signal.SIGKILL)

    # Leftovers of a run killed together with its reaper: down-hosts removes them, and only
    # those with its prefix.
    for prefix in (PREFIX, OTHER_PREFIX):
        netns.run("ip", "netns", "add", f"{prefix}x")
        netns.run("ip", "link", "add", f"{prefix}br", "type", "bridge")
    try:
        result = subprocess.run([sys.executable, "-m", "stack", "down-hosts"], cwd=REPO_ROOT,
                                env=hosts_env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"netns {PREFIX}x" in result.stdout and f"link {PREFIX}br" in result.stdout
        assert gone(PREFIX)
        assert netns.leftovers(OTHER_PREFIX)["netns"] == [f"{OTHER_PREFIX}x"]
    finally:
        netns.destroy_prefix(OTHER_PREFIX)
