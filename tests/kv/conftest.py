"""A real KV cluster per test: one redis-server (AOF always) and one Gunicorn node per NODE_ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.procs import GunicornService, RedisServer, free_port, wait_until

CLUSTER_TOKEN = "test-cluster-token"
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


class KVCluster:
    def __init__(self, tmp: Path, n: int, workers: int = 2, env: dict[str, str] | None = None):
        self.tmp, self.n, self.workers, self.extra_env = tmp, n, workers, env or {}
        self.ports = [free_port() for _ in range(n)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.redis = [RedisServer(tmp / f"redis-node{i + 1}", name=f"redis-node{i + 1}")
                      for i in range(n)]
        self.nodes = [self._node(i) for i in range(n)]

    def _node(self, i: int) -> GunicornService:
        env = {"NODE_ID": str(i), "NODE_URLS": ",".join(self.urls),
               "REDIS_URL": self.redis[i].url, "CLUSTER_TOKEN": CLUSTER_TOKEN,
               "ADMIN_TOKEN": ADMIN_TOKEN, "REPLICATION_BACKOFF_MAX_S": "0.5",
               **self.extra_env}
        return GunicornService(f"node{i + 1}", "nodes.app:create_app()", env,
                               port=self.ports[i], log_dir=self.tmp, workers=self.workers)

    def start(self) -> KVCluster:
        for r in self.redis:
            r.start()
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_healthy()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        for r in self.redis:
            r.kill()

    # -- fault injection -----------------------------------------------------------------
    def restart_node(self, i: int) -> None:
        self.nodes[i] = self._node(i)
        self.nodes[i].start()

    def restart_redis(self, i: int) -> None:
        self.redis[i] = RedisServer(self.redis[i].data_dir, port=self.redis[i].port,
                                    name=f"redis-node{i + 1}").start()

    def link(self, src: int, dst: int, **settings) -> dict:
        resp = requests.post(f"{self.urls[src]}/admin/links", json={"peer": dst, **settings},
                             headers=ADMIN, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    # -- observation ---------------------------------------------------------------------
    def put(self, i: int, key: str, value, context=None) -> dict:
        body = {"value": value} if context is None else {"value": value, "context": context}
        resp = requests.put(f"{self.urls[i]}/kv/{key}", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def get(self, i: int, key: str, context=None) -> requests.Response:
        params = {"context": ",".join(map(str, context))} if context else {}
        return requests.get(f"{self.urls[i]}/kv/{key}", params=params, timeout=10)

    def status(self, i: int) -> dict:
        return requests.get(f"{self.urls[i]}/status", timeout=5).json()

    def items(self, i: int, prefix: str = "", limit: int = 1000) -> dict:
        """Every key's winner, read with the paged listing."""
        out, cursor = {}, None
        while True:
            params = {"prefix": prefix, "limit": limit, **({"cursor": cursor} if cursor else {})}
            resp = requests.get(f"{self.urls[i]}/kv", params=params, timeout=10)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            for item in body["items"]:
                assert item["key"] not in out  # every key exactly once
                out[item["key"]] = item["value"]
            cursor = body["cursor"]
            if cursor is None:
                return out

    def state(self, i: int) -> dict:
        """Status plus the whole store (for tests only: /status no longer carries it)."""
        return {**self.status(i), "store": self.items(i)}

    def admin_sync(self, i: int, rebuild: bool = False) -> dict:
        resp = requests.post(f"{self.urls[i]}/admin/sync", json={"rebuild": rebuild},
                             headers=ADMIN, timeout=120)
        assert resp.status_code == 200, resp.text
        return resp.json()
    def events(self, i: int) -> list[dict]:
        out, since = [], 0
        while True:
            body = requests.get(f"{self.urls[i]}/events",
                                params={"since": since, "limit": 1000}, timeout=5).json()
            out += body["events"]
            if not body["events"]:
                return out
            since = body["next"]

    def converged(self) -> bool:
        """Same clock and store everywhere, empty buffers and outboxes."""
        states = [self.state(i) for i in range(self.n)]
        first = states[0]
        return all(s["vector_clock"] == first["vector_clock"] and s["store"] == first["store"]
                   and s["state"] == "serving" and not s["buffered"]
                   and not any(s["outbox"].values()) for s in states)

    def wait_converged(self, timeout: float = 30) -> list[dict]:
        wait_until(self.converged, timeout=timeout, interval=0.1, message="convergence")
        return [self.state(i) for i in range(self.n)]


@pytest.fixture
def kv_cluster_factory(tmp_path: Path) -> Iterator:
    clusters: list[KVCluster] = []

    def make(n: int = 3, workers: int = 2, env: dict[str, str] | None = None) -> KVCluster:
        cluster = KVCluster(tmp_path / f"cluster{len(clusters)}", n, workers, env)
        clusters.append(cluster)
        return cluster.start()

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def kv3(kv_cluster_factory) -> KVCluster:
    return kv_cluster_factory(3)


@pytest.fixture(scope="module")
def kv3_shared(tmp_path_factory) -> Iterator[KVCluster]:
    """One cluster for a module of tests that each leave it as they found it."""
    cluster = KVCluster(tmp_path_factory.mktemp("kv3-shared"), 3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
