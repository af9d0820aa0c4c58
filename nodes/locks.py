"""A Redis lease held by one worker thread at a time (senders, anti-entropy, verification)."""

from __future__ import annotations

import os
import time
import uuid

import redis

from common import lua


class RedisLock:
    """Held while renewed; a holder that stops renewing loses it after `ttl_ms`."""

    def __init__(self, client: redis.Redis, key: str, ttl_ms: int = 5000, renew_s: float = 1.0):
        self.client, self.key, self.ttl_ms, self.renew_s = client, key, ttl_ms, renew_s
        self.token = f"{os.getpid()}:{uuid.uuid4().hex}"
        scripts = lua.load_scripts(client, "nodes", "lock_renew", "lock_release")
        self._renew, self._release = scripts["lock_renew"], scripts["lock_release"]
        self.renewed_at = -renew_s

    def hold(self, force: bool = False) -> bool:
        """True while this thread holds the lock (renewing at most once per `renew_s`)."""
        now = time.monotonic()
        if not force and now - self.renewed_at < self.renew_s:
            return True  # renewing is a write (an fsync): once a second is plenty
        held = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
                    or self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        self.renewed_at = now if held else -self.renew_s
        return held

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.token])
        except redis.exceptions.RedisError:
            pass  # the TTL frees it
        self.renewed_at = -self.renew_s
