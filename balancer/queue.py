"""The FIFO queue of cars that asked to wait (`"wait": true`), in the grid Redis so it survives
a balancer restart and is shared by every worker and balancer.

A queued car has id "queue.<hex>"; admitted on substation S, its session is "S.<hex>". One
dispatcher at a time across all balancers (a Redis lease) admits the head of the queue as
soon as any substation has room: it is woken by the grid:room channel, which the grid
scripts publish to whenever power frees up and when a car joins.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.background import BackgroundLoop
from grid.keys import QUEUE, QUEUE_KEYS, QUEUE_LOCK, QUEUE_PLACED, QUEUE_REQUESTS, ROOM_CHANNEL
from grid.scripts import grid_scripts
from grid.wire import QUEUE_PREFIX

log = logging.getLogger(__name__)
LEASE_MS = 2000
IDLE_WAIT_S = 0.25  # re-check the head at least this often even without a wake-up


@dataclass(frozen=True)
class Waiting:
    queue_id: str
    position: int  # 1-based
    enqueued_ms: int
    request: dict[str, Any]


class CarQueue:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._scripts = grid_scripts(client, "enqueue", "placed", "cancel", "lock")

    def join(self, rid: str, body: bytes) -> tuple[str, int]:
        queue_id = f"{QUEUE_PREFIX}.{rid}"
        position = self._scripts["enqueue"](keys=[QUEUE, QUEUE_REQUESTS],
                                            args=[queue_id, body.decode()])
        return queue_id, int(position)

    def head(self) -> tuple[str, bytes] | None:
        """(queue id, request body) of the oldest waiting car."""
        pipe = self.client.pipeline(transaction=False)
        pipe.lindex(QUEUE, 0)
        queue_id = pipe.execute()[0]
        if queue_id is None:
            return None
        raw = self.client.hget(QUEUE_REQUESTS, queue_id)
        if raw is None:
            return None  # cancelled meanwhile
        return queue_id, raw.split(":", 1)[1].encode()

    def placed(self, queue_id: str, substation: str) -> bool:
        """Record the admission; False when the car was cancelled meanwhile."""
        return self._scripts["placed"](keys=QUEUE_KEYS, args=[queue_id, substation]) == 1

    def cancel(self, queue_id: str) -> tuple[bool, str]:
        """(cancelled, substation it was already placed on or '')."""
        done, where = self._scripts["cancel"](keys=QUEUE_KEYS, args=[queue_id])
        return done == 1, where

    def lookup(self, queue_id: str) -> tuple[int | None, str | None]:
        """(position when waiting, substation when placed ('' cancelled))."""
        pipe = self.client.pipeline(transaction=False)
        pipe.lpos(QUEUE, queue_id)
        pipe.hget(QUEUE_PLACED, queue_id)
        pos, where = pipe.execute()
        return (None if pos is None else int(pos) + 1), where

    def waiting(self, limit: int = 20) -> tuple[int, list[Waiting]]:
        """(queue length, the first `limit` cars)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(QUEUE)
        pipe.lrange(QUEUE, 0, limit - 1)
        length, ids = pipe.execute()
        raws = self.client.hmget(QUEUE_REQUESTS, ids) if ids else []
        out = []
        for i, (queue_id, raw) in enumerate(zip(ids, raws, strict=True)):
            if raw is None:
                continue
            stamp, _, body = raw.partition(":")
            out.append(Waiting(queue_id, i + 1, int(stamp), json.loads(body)))
        return int(length), out

    def lease(self, holder: str) -> bool:
        return self._scripts["lock"](keys=[QUEUE_LOCK], args=[holder, LEASE_MS]) == 1


class Dispatcher(BackgroundLoop):
    """Admits queued cars in order. `place(queue_id, body)` tries to admit one car and
    returns the substation that took it, or None."""

    thread_name = "queue-dispatcher"

    def __init__(self, client: redis.Redis, queue: CarQueue,
                 place: Callable[[str, bytes], str | None]):
        self.client, self.queue, self.place = client, queue, place
        super().__init__()
        self._me = f"{os.getpid()}-{id(self)}"

    def step(self) -> bool:
        """Try the head once; True when a car left the queue (so try the next at once)."""
        head = self.queue.head()
        if head is None:
            return False
        queue_id, body = head
        return self.place(queue_id, body) is not None

    def _run(self) -> None:
        pubsub = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(ROOM_CHANNEL)
                holder = self.queue.lease(self._me)
                if holder and self.step():
                    continue
                # Sleep until power frees up or a car joins (or IDLE_WAIT_S); drain the rest.
                # Only the lease holder acts on a wake-up; the others just renew their bid.
                deadline = time.monotonic() + IDLE_WAIT_S
                while (left := deadline - time.monotonic()) > 0:
                    if pubsub.get_message(timeout=left) and holder:
                        while pubsub.get_message(timeout=0):
                            pass
                        break
            except redis.RedisError as exc:
                log.warning("queue dispatcher: %s", exc)
                if pubsub is not None:
                    pubsub.close()
                pubsub = None
                self._stop.wait(IDLE_WAIT_S)
            except Exception:  # noqa: BLE001 - keep dispatching; the head stays queued
                log.exception("queue dispatcher step failed")
                self._stop.wait(IDLE_WAIT_S)
