"""The reaper tick: ends sessions whose deadline or energy target has passed even when no
request comes, so the others' allocations rise and waiting cars are woken at once."""

from __future__ import annotations

import logging
import threading

import redis

from grid.sessions import SessionStore

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, store: SessionStore, interval_s: float):
        self.store, self.interval_s = store, interval_s
        self._stop = threading.Event()

    def start(self) -> Reaper:
        threading.Thread(target=self._run, name="reaper", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.store.reap()
            except redis.RedisError as exc:
                log.debug("reap skipped: %s", exc)
