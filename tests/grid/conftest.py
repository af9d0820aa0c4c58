"""A real grid per test: one grid Redis, three substations and a balancer under Gunicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from common.procs import GunicornService, RedisServer, free_port

ADMIN_TOKEN = "test-admin-token"
# Long durations: nothing expires while a test runs unless the test asks for it.
CAPACITIES_KW = {"substation1": 150.0, "substation2": 100.0, "substation3": 50.0}
DURATION_S = 3600


def _pooled_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    return session


@dataclass
class Grid:
    redis: RedisServer
    subs: dict[str, GunicornService]
    balancer: GunicornService
    balancers: list[GunicornService] = field(default_factory=list)  # balancer first
    http: requests.Session = field(default_factory=lambda: _pooled_session())

    def charge(self, vehicle_id: str = "EV-1", url: str | None = None, **fields: Any):
        return self.http.post((url or self.balancer.url) + "/charge",
                              json={"vehicle_id": vehicle_id, **fields}, timeout=10)

    def status(self) -> dict[str, Any]:
        resp = self.http.get(self.balancer.url + "/status", timeout=5)
        resp.raise_for_status()
        return resp.json()

    def sub_status(self, name: str) -> dict[str, Any]:
        resp = self.http.get(self.subs[name].url + "/status", timeout=5)
        resp.raise_for_status()
        return resp.json()

    def set_strategy(self, strategy: str) -> None:
        resp = self.http.post(self.balancer.url + "/admin/strategy", json={"strategy": strategy},
                              headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=5)
        assert resp.status_code == 200, resp.text


@pytest.fixture
def grid_factory(redis_factory, service_factory, tmp_path) -> Iterator[Callable[..., Grid]]:
    grids: list[Grid] = []

    def make(capacities: dict[str, float] | None = None, duration_s: float = DURATION_S,
             n_balancers: int = 1, substation_env: dict[str, dict[str, str]] | None = None,
             **balancer_env: str) -> Grid:
        redis = redis_factory("redis-grid", appendfsync="everysec")
        capacities = capacities or CAPACITIES_KW
        ports = {name: free_port() for name in capacities}
        env = {"SUBSTATIONS": ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in ports.items()),
               "REDIS_URL": redis.url, "ADMIN_TOKEN": ADMIN_TOKEN,
               "ROUTING_STRATEGY": "least-utilization", "HEALTH_INTERVAL_S": "0.5",
               **balancer_env}
        subs = {name: service_factory(
            name, "substations.app:create_app()",
            {"SUBSTATION_NAME": name, "CAPACITY_KW": str(cap),
             "CHARGE_DURATION_S": str(duration_s), "REDIS_URL": redis.url,
             "REAP_INTERVAL_S": "0.1", **(substation_env or {}).get(name, {})},
            wait=False, port=ports[name]) for name, cap in capacities.items()}
        balancers = [service_factory(f"balancer{i}" if i else "balancer",
                                     "balancer.app:create_app()", env, wait=False)
                     for i in range(n_balancers)]
        balancer = balancers[0]
        everything = [*subs.values(), *balancers]
        with ThreadPoolExecutor(len(everything)) as pool:
            list(pool.map(lambda svc: svc.wait_healthy(), everything))
        grid = Grid(redis, subs, balancer, balancers)
        grids.append(grid)
        return grid

    yield make
    # SIGKILL of each process group: nothing to keep, and a graceful Gunicorn stop costs
    # seconds per service (service_factory then finds them gone).
    for grid in grids:
        for svc in [*grid.subs.values(), *grid.balancers]:
            svc.kill()


@pytest.fixture
def grid(grid_factory) -> Grid:
    return grid_factory()
