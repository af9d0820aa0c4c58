"""Substation health, shared through Redis so every worker and balancer agrees.

Active: one checker per HEALTH_INTERVAL_S across all workers (a Redis lock) GETs every
/health. A definite "no" (an answer other than 200, or a refused connection) ejects at once; a
probe that gets no answer in time only counts, and EJECT_AFTER of them in a row eject: one slow
answer from a busy machine must not turn cars away from a serving substation (found by
`make chaos`, seed 3). A success brings the substation back. Passive: after
EJECT_AFTER consecutive request-path failures (timeout, connection error, 5xx that is not a
capacity refusal) it is ejected without waiting for the checker (lua/journal.lua).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import redis

from balancer import keys
from balancer.upstream import Upstream, UpstreamError
from common.background import BackgroundLoop

log = logging.getLogger(__name__)


class HealthChecker(BackgroundLoop):
    thread_name = "health-checker"

    def __init__(self, client: redis.Redis, upstream: Upstream, interval_s: float,
                 eject_after: int = 3):
        self.client, self.upstream, self.interval_s = client, upstream, interval_s
        self.eject_after = eject_after
        self.timeout_s = min(upstream.timeout_s, interval_s)
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=len(upstream.urls),
                                        thread_name_prefix="health")
        self._me = f"{os.getpid()}-{id(self)}"

    def probe(self, name: str) -> str:
        """"ok", "down" (a definite no) or "silent" (no answer in time)."""
        try:
            return "ok" if self.upstream.get(name, "/health", self.timeout_s).status == 200 \
                else "down"
        except UpstreamError as exc:
            return "silent" if str(exc) == "timeout" else "down"
        except Exception:  # noqa: BLE001 - any other failure to answer is a definite no
            return "down"

    def check_once(self) -> dict[str, bool]:
        names = list(self.upstream.urls)
        probes = dict(zip(names, self._pool.map(self.probe, names), strict=True))
        silent = [n for n, p in probes.items() if p == "silent"]
        streaks = {}
        if silent:
            pipe = self.client.pipeline(transaction=False)
            for name in silent:
                pipe.hincrby(keys.SILENT, name, 1)
            streaks = dict(zip(silent, pipe.execute(), strict=True))
        before = self.client.hgetall(keys.HEALTH)
        results = {n: p == "ok" or (p == "silent" and streaks[n] < self.eject_after
                                     and before.get(n, "1") == "1")
                   for n, p in probes.items()}
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(keys.HEALTH, mapping={n: "1" if ok else "0" for n, ok in results.items()})
        answered = [n for n, p in probes.items() if p != "silent"]
        if answered:
            pipe.hdel(keys.SILENT, *answered)
        healthy = [n for n, p in probes.items() if p == "ok"]
        if healthy:
            pipe.hdel(keys.FAILS, *healthy)
        pipe.execute()
        for name, ok in results.items():
            if before.get(name, "1") != ("1" if ok else "0"):
                log.warning("substation %s is %s (active check)", name,
                            "healthy again" if ok else "unhealthy")
        return results

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
