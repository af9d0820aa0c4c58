"""Substation health, shared through Redis so every worker and balancer agrees.

Active: one checker per HEALTH_INTERVAL_S across all workers (a Redis lock) GETs every
/health; a failure ejects at once, a success brings the substation back. Passive: after
EJECT_AFTER consecutive request-path failures (timeout, connection error, 5xx that is not a
capacity refusal) it is ejected without waiting for the checker (lua/journal.lua).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from balancer import keys
from balancer.upstream import Upstream

log = logging.getLogger(__name__)


class HealthChecker:
    def __init__(self, client: redis.Redis, upstream: Upstream, interval_s: float):
        self.client, self.upstream, self.interval_s = client, upstream, interval_s
        self.timeout_s = min(0.5, interval_s)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=len(upstream.urls),
                                        thread_name_prefix="health")
        self._me = f"{os.getpid()}-{id(self)}"

    def probe(self, name: str) -> bool:
        try:
            return self.upstream.get(name, "/health", self.timeout_s).status == 200
        except Exception:  # noqa: BLE001 - any failure to answer is unhealthy
            return False

    def check_once(self) -> dict[str, bool]:
        names = list(self.upstream.urls)
        results = dict(zip(names, self._pool.map(self.probe, names), strict=True))
        before = self.client.hgetall(keys.HEALTH)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(keys.HEALTH, mapping={n: "1" if ok else "0" for n, ok in results.items()})
        healthy = [n for n, ok in results.items() if ok]
        if healthy:
            pipe.hdel(keys.FAILS, *healthy)
        pipe.execute()
        for name, ok in results.items():
            if before.get(name, "1") != ("1" if ok else "0"):
                log.warning("substation %s is %s (active check)", name,
                            "healthy again" if ok else "unhealthy")
        return results

    def start(self) -> HealthChecker:
        threading.Thread(target=self._run, name="health-checker", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        ttl_ms = max(50, int(self.interval_s * 1000) - 20)
        while not self._stop.is_set():
            try:
                if self.client.set(keys.HEALTH_LOCK, self._me, nx=True, px=ttl_ms):
                    self.check_once()
            except redis.RedisError as exc:
                log.warning("health check skipped: %s", exc)
            # Poll the lock twice per interval so a check is never more than ~1.5 intervals late.
            self._stop.wait(self.interval_s / 2)
