"""The reaper tick: ends sessions whose deadline or energy target has passed even when no
request comes, so the others' allocations rise and waiting cars are woken at once."""

from __future__ import annotations

import logging

import redis

from common.background import BackgroundLoop
from grid.sessions import SessionStore

log = logging.getLogger(__name__)


class Reaper(BackgroundLoop):
    thread_name = "reaper"

    def __init__(self, store: SessionStore, interval_s: float):
        self.store, self.interval_s = store, interval_s
        super().__init__()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.store.reap()
            except redis.RedisError as exc:
                log.debug("reap skipped: %s", exc)
