"""Anti-entropy: each node pulls from each peer every ANTI_ENTROPY_S, and on demand.

One round with peer p (this node is q):
  q -> p  POST /sync/digest {"from", "vc": VC_q, "top": 64 bucket sums}        (constant size)
  p -> q  {"vc": VC_p, "delta": [[key, siblings], ...], "leaves": {t: 64 sums}} (the difference)
  q applies the delta (sync_apply.lua "delta"), then compares leaf sums and, for leaves that still
  differ, q -> p POST /sync/leaves, p -> q their keys, merged in "repair" mode (only versions
  q's clock already covers). See docs/kv.md for why this never shows a value before its causes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass

import redis
import requests

from nodes.config import NodeConfig
from nodes.locks import RedisLock
from nodes.metrics import SYNC_BYTES, SYNC_EXCHANGES, SYNC_REPAIRS
from nodes.store import AE_DUE, AE_WAKE, NodeStore, connect

log = logging.getLogger(__name__)

LEAVES_PER_ROUND = 256  # bounds one round's repair traffic; the next round does the rest
LOCK_TTL_MS = 10_000  # a round outliving it only means two rounds at once: harmless


class SyncRefused(Exception):
    """The peer answered, but not with a state (its link to us is paused, it is busy...)."""


@dataclass
class RoundResult:
    peer: int
    result: str
    keys_repaired: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms: int = 0

    def as_dict(self) -> dict:
        return {"last_exchange_ms": int(time.time() * 1000), "result": self.result,
                "keys_repaired": self.keys_repaired, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received, "duration_ms": self.duration_ms}


class SyncClient:
    def __init__(self, cfg: NodeConfig, store: NodeStore):
        self.cfg, self.store = cfg, store
        self.http = requests.Session()
        self.http.headers.update({"X-Cluster-Token": cfg.cluster_token,
                                  "Content-Type": "application/json"})

    def _post(self, peer: int, path: str, body: dict, result: RoundResult) -> dict:
        data = json.dumps(body, separators=(",", ":")).encode()
        result.bytes_sent += len(data)
        resp = self.http.post(f"{self.cfg.node_urls[peer]}{path}", data=data,
                              timeout=self.cfg.sync_timeout_s)
        result.bytes_received += len(resp.content)
        if resp.status_code != 200:
            raise SyncRefused(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def pull(self, peer: int, record: bool = True) -> RoundResult:
        """One anti-entropy round pulling from `peer`; never raises."""
        result = RoundResult(peer, "ok")
        started = time.monotonic()
        try:
            self._pull(peer, result)
        except (requests.RequestException, SyncRefused, ValueError, KeyError) as exc:
            result.result = f"error: {type(exc).__name__}: {str(exc)[:200]}"
        except redis.exceptions.RedisError as exc:
            result.result = f"error: redis: {type(exc).__name__}"
        result.duration_ms = int((time.monotonic() - started) * 1000)
        outcome = "ok" if result.result == "ok" else "error"
        SYNC_EXCHANGES.labels(str(peer), outcome).inc()
        SYNC_BYTES.labels(str(peer), "sent").inc(result.bytes_sent)
        SYNC_BYTES.labels(str(peer), "received").inc(result.bytes_received)
        SYNC_REPAIRS.labels(str(peer)).inc(result.keys_repaired)
        if record:
            try:
                self.store.record_sync(peer, result.as_dict())
            except redis.exceptions.RedisError:
                pass
        return result

    def _pull(self, peer: int, result: RoundResult) -> None:
        me = self.cfg.node_id
        body = self._post(peer, "/sync/digest", {"from": me, "vc": self.store.clock(),
                                                 "top": self.store.top_sums()}, result)
        applied = self.store.sync_apply("delta", body["vc"], body["delta"])
        result.keys_repaired += applied.keys_repaired
        theirs: dict[str, list[str]] = body["leaves"]
        if not theirs:
            return
        mine = self.store.leaf_sums(sorted(theirs))
        differing = [f"{t}:{i}" for t, sums in theirs.items()
                     for i, s in enumerate(sums) if mine[t][i] != s]
        if not differing:
            return
        random.shuffle(differing)
        items = self._post(peer, "/sync/leaves",
                           {"from": me, "leaves": differing[:LEAVES_PER_ROUND]}, result)["items"]
        repaired = self.store.sync_apply("repair", None, items)
        result.keys_repaired += repaired.keys_repaired

    def round(self) -> list[RoundResult]:
        return [self.pull(peer) for peer in self.cfg.peers]


def wake(store: NodeStore) -> None:
    """Ask whichever worker runs anti-entropy to run a round now. The flag outlives a worker
    that dies before it reads the wake-up (its successor runs the round)."""
    pipe = store.redis.pipeline(transaction=True)
    pipe.set(AE_DUE, 1)
    pipe.publish(AE_WAKE, 1)
    pipe.execute()


class AntiEntropy(threading.Thread):
    """Runs rounds every ANTI_ENTROPY_S (jittered) while holding the node's anti-entropy lock."""

    def __init__(self, cfg: NodeConfig, store: NodeStore, stop: threading.Event):
        super().__init__(name="anti-entropy", daemon=True)
        self.cfg, self.store, self.stop_event = cfg, store, stop
        self.redis = connect(cfg)
        self.lock = RedisLock(self.redis, "kv:ae-lock", LOCK_TTL_MS, 1.0)
        self.client = SyncClient(cfg, store)
        self.wakeups = self.redis.pubsub(ignore_subscribe_messages=True)
        self.rebuilt_at = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if not self.lock.hold(force=True):
                    if self.wakeups.subscribed:
                        self.wakeups.reset()
                    self.stop_event.wait(1.0 + random.random())
                    continue
                if not self.wakeups.subscribed:
                    self.wakeups.subscribe(AE_WAKE)
                self._wait(self.cfg.anti_entropy_s * (0.8 + 0.4 * random.random()))
                if self.stop_event.is_set() or not self.lock.hold(force=True):
                    continue
                if time.monotonic() - self.rebuilt_at >= self.cfg.digest_rebuild_s:
                    self.store.digest_rebuild()
                    self.rebuilt_at = time.monotonic()
                self.client.round()
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("anti-entropy: redis unavailable: %s", exc)
                self.stop_event.wait(1.0)

    def _wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.stop_event.is_set():
            if self.redis.getdel(AE_DUE):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.wakeups.get_message(timeout=min(left, 1.0)) is not None:
                while self.wakeups.get_message(timeout=0) is not None:
                    pass
            self.lock.hold()  # keep the lease while waiting
