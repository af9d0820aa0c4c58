"""After the upstream answers: count where requests went, track consecutive failures for
passive ejection and push the decision record: one Lua call (lua/journal.lua). Reservations
are settled by the grid scripts only: the admission, or the balancer giving up on it."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from balancer import keys
from balancer.upstream import Attempt
from common.lua import load_scripts

log = logging.getLogger(__name__)


@dataclass
class Decision:
    time: str
    vehicle_id: str
    power_kw: float
    strategy: str
    reason: str
    # admitted | refused (nobody had room) | error (nobody answered) | queued
    outcome: str = "refused"
    substation: str | None = None
    allocated_kw: float | None = None
    utilization_before: float | None = None
    utilization_after: float | None = None
    session_id: str | None = None
    ends_at: str | None = None
    tried: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # "name: outcome (detail)"
    decision_ms: float = 0.0

    def to_json(self) -> str:
        # vars(): a flat copy; dataclasses.asdict deep-copies and costs ~0.1 ms per decision
        return json.dumps(vars(self), separators=(",", ":"))


class Journal:
    """journal.lua: one Redis call per decision (counts, failure streaks, passive ejection,
    the decision record), made by one background thread per worker: a Gunicorn thread that
    journals after sending the answer still holds the keep-alive connection until it is
    done, so a car's next request would wait for it."""

    def __init__(self, client: redis.Redis, eject_after: int):
        self.eject_after = eject_after
        self._script = load_scripts(client, "balancer", "journal")["journal"]
        self._todo: queue.Queue = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, attempts: list[Attempt], decision: Decision) -> None:
        """Journal in the background (started on first use, so after Gunicorn's fork)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="journal",
                                                    daemon=True)
                    self._thread.start()
        try:
            self._todo.put_nowait((attempts, decision))
        except queue.Full:  # Redis is gone for long: drop the record, never block a car
            log.warning("journal queue full: decision for %s not recorded", decision.vehicle_id)

    def drain(self, timeout_s: float = 2.0) -> None:
        """Wait until this worker's decisions are written (before /status and /metrics read
        them); a bounded wait, as Redis may be down."""
        deadline = time.monotonic() + timeout_s
        while self._todo.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.001)

    def _run(self) -> None:
        while True:
            attempts, decision = self._todo.get()
            try:
                self.finish(attempts, decision)
            except redis.RedisError as exc:
                log.warning("could not journal a decision: %s", exc)
            except Exception:  # noqa: BLE001 - keep journaling
                log.exception("journal failed")
            finally:
                self._todo.task_done()

    def finish(self, attempts: list[Attempt], decision: Decision) -> None:
        args: list[str | int] = [decision.to_json(), keys.RECENT_MAX, self.eject_after]
        for attempt in attempts:
            args += [attempt.substation, attempt.outcome]
        ejected = self._script(keys=[keys.ROUTED, keys.FAILS, keys.RECENT, keys.HEALTH],
                               args=args)
        details = {a.substation: a.detail for a in attempts}
        for name, streak in zip(ejected[::2], ejected[1::2], strict=True):
            log.warning("substation %s ejected: %s consecutive failures (%s)", name, streak,
                        details.get(name, ""))


def recent(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(item) for item in client.lrange(keys.RECENT, 0, keys.RECENT_MAX - 1)]
