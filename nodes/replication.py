"""Replication senders: one thread per peer per worker, but only the holder of the peer's Redis
lock sends, so each peer receives this node's messages in order from one sender at a time.

The outbox lives in Redis, so a crash of either side loses nothing: the sender retries with
exponential backoff until the peer acknowledges, and the peer drops duplicates.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time

import redis
import requests

from nodes.config import NodeConfig
from nodes.locks import RedisLock
from nodes.metrics import REPLICATION_BATCHES, REPLICATION_LATENCY
from nodes.store import NodeStore, connect, linkstate_key, outbox_key, wake_channel

log = logging.getLogger(__name__)

LOCK_TTL_MS = 5000  # > longest gap between renewals (HTTP timeout + backoff)
LOCK_RENEW_S = 1.0


def _counter(entry: str, origin: int) -> int:
    """Own-entry counter of a wire message, read without decoding the (possibly large) value."""
    vc = entry[entry.index("[") + 1:entry.index("]")].split(",")
    return int(vc[origin])


def _timestamp_ms(entry: str) -> int:
    return int(entry[entry.rindex('"ts":') + 5:-1])


class PeerSender(threading.Thread):
    def __init__(self, cfg: NodeConfig, store: NodeStore, peer: int,
                 stop: threading.Event):
        super().__init__(name=f"sender-{peer}", daemon=True)
        self.cfg, self.store, self.peer, self.stop_event = cfg, store, peer, stop
        self.redis = connect(cfg)
        # Subscribed only while this thread holds the peer's lock (see _wait_for_wake).
        self.wakeups = self.redis.pubsub(ignore_subscribe_messages=True)
        self.lock = RedisLock(self.redis, f"kv:sender-lock:{peer}", LOCK_TTL_MS, LOCK_RENEW_S)
        self.url = f"{cfg.node_urls[peer]}/replicate"
        self.http = requests.Session()
        self.http.headers.update({"X-Cluster-Token": cfg.cluster_token,
                                  "Content-Type": "application/json"})
        self.backoff = 0.0
        self.failures = 0

    # -- lock ------------------------------------------------------------------------------
    def _hold_lock(self) -> bool:
        return self.lock.hold()

    def _wait_for_wake(self, timeout_s: float) -> None:
        """Block until a local write or link change publishes, or `timeout_s` passes."""
        if not self.wakeups.subscribed:
            self.wakeups.subscribe(wake_channel(self.peer))
            return  # look at the outbox again: from now on no wake-up can be missed
        if self.wakeups.get_message(timeout=timeout_s) is not None:
            while self.wakeups.get_message(timeout=0) is not None:
                pass  # one look at the outbox serves every write that woke us

    def release_lock(self) -> None:
        self.lock.release()

    # -- loop ------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if not self._hold_lock():
                    if self.wakeups.subscribed:
                        self.wakeups.reset()  # a non-sender must not pile up wake-ups
                    self.stop_event.wait(0.5 + random.random() * 0.5)
                    continue
                self._step()
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("sender to node %d: redis unavailable: %s", self.peer, exc)
                self.stop_event.wait(0.5)

    def _step(self) -> None:
        link = self.store.get_link(self.peer)
        if not link["paused"]:
            self._kick_if_marked()
        if link["paused"]:
            self._wait_for_wake(1.0)
            return
        entries = self.redis.lrange(outbox_key(self.peer), 0, self.cfg.replication_batch - 1)
        if not entries:
            self._wait_for_wake(1.0)
            return
        now_ms = time.time() * 1000
        delay = link["delay_ms"]
        batch, size = [], 0
        for entry in entries:
            if delay and _timestamp_ms(entry) + delay > now_ms:
                break
            if batch and size + len(entry) > self.cfg.replication_batch_bytes:
                break
            batch.append(entry)
            size += len(entry)
        if not batch:
            wait_s = (_timestamp_ms(entries[0]) + delay - now_ms) / 1000
            self.stop_event.wait(min(max(wait_s, 0.001), 1.0))
            return
        self._send(batch)

    def _kick_if_marked(self) -> None:
        """The outbox to this peer was dropped (OUTBOX_MAX): ask the peer to pull a state
        transfer from us, and clear the mark once it has agreed to."""
        mark = self.store.needsync().get(self.peer)
        if mark is None:
            return
        try:
            resp = self.http.post(f"{self.cfg.node_urls[self.peer]}/sync/kick",
                                  data=f'{{"from":{self.cfg.node_id}}}'.encode(),
                                  timeout=self.cfg.replication_timeout_s)
        except requests.RequestException:
            return
        if resp.status_code == 202:
            self.store.clear_needsync(self.peer, mark)

    def _send(self, batch: list[str]) -> None:
        body = f'{{"from":{self.cfg.node_id},"messages":[{",".join(batch)}]}}'
        origin = self.cfg.node_id
        attempt_ms = int(time.time() * 1000)
        try:
            resp = self.http.post(self.url, data=body.encode(),
                                  timeout=self.cfg.replication_timeout_s)
            ok = resp.status_code == 200
            error = "" if ok else f"HTTP {resp.status_code}: {resp.text[:200]}"
            acked = int(resp.json()["acked"]) if ok else 0
        except (requests.RequestException, ValueError, KeyError) as exc:
            ok, error, acked = False, type(exc).__name__, 0
        if ok:
            done = time.time()
            # The peer may accept a prefix only (its buffer is full): drop just that prefix.
            self.store.ack(self.peer, acked, attempt_ms, int(done * 1000))
            for entry in batch:
                if _counter(entry, origin) > acked:
                    break
                REPLICATION_LATENCY.labels(str(self.peer)).observe(
                    max(0.0, done - _timestamp_ms(entry) / 1000))
            REPLICATION_BATCHES.labels(str(self.peer), "ok").inc()
            self.failures, self.backoff = 0, 0.0
            return
        REPLICATION_BATCHES.labels(str(self.peer), "error").inc()
        self.failures += 1
        self.backoff = min(self.cfg.backoff_max_s, max(0.05, self.backoff * 2))
        self.redis.hset(linkstate_key(self.peer), mapping={
            "state": "retrying", "consecutive_failures": self.failures,
            "last_attempt_ms": attempt_ms, "last_error": error})
        if self.failures in (1, 10) or self.failures % 100 == 0:
            log.warning("replication to node %d failed (%d in a row): %s",
                        self.peer, self.failures, error)
        # Jitter keeps several nodes from retrying a recovering peer in lockstep.
        self.stop_event.wait(self.backoff * (0.5 + random.random() / 2))


def start_senders(cfg: NodeConfig, store: NodeStore) -> threading.Event:
    """Start this worker's senders; set the returned event to stop them."""
    stop = threading.Event()
    senders = [PeerSender(cfg, store, peer, stop) for peer in cfg.peers]
    for sender in senders:
        sender.start()

    def _shutdown() -> None:
        # A worker leaving gracefully hands its peers over at once instead of after the TTL.
        stop.set()
        for sender in senders:
            sender.release_lock()

    atexit.register(_shutdown)
    return stop
