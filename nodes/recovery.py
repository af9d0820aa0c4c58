"""Verification of a node's own data: a node that may have forgotten never reuses a clock entry.

Whenever the node's Redis may not be continuous (kv:meta missing = empty Redis, or its INFO
run_id differs from the one last verified = Redis restarted, which every restore from an old copy
involves) local_write.lua refuses writes and this guard, in one worker at a time, asks EVERY peer
(POST /sync/hello) for the highest entry of ours it has delivered or buffered and whether it knew
us under another incarnation id. If none knows more than we do: serve. Otherwise we forgot: pull
a full state transfer from every peer, wait (up to RECOVERY_WAIT_S) until no peer still buffers a
message of ours we lack, move our own entry RECOVERY_SKIP past the highest anyone saw, serve, and
kick the peers so they learn the jump.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
import requests

from nodes.config import RECOVERY_SKIP, NodeConfig
from nodes.locks import RedisLock
from nodes.store import NodeStore, connect
from nodes.sync import SyncClient

log = logging.getLogger(__name__)

CHECK_S = 0.5


class Guard(threading.Thread):
    def __init__(self, cfg: NodeConfig, store: NodeStore, stop: threading.Event):
        super().__init__(name="guard", daemon=True)
        self.cfg, self.store, self.stop_event = cfg, store, stop
        self.redis = connect(cfg)
        self.lock = RedisLock(self.redis, "kv:guard-lock", 5000, 1.0)
        self.sync = SyncClient(cfg, store)
        self.http = requests.Session()
        self.http.headers.update({"X-Cluster-Token": cfg.cluster_token})

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.lock.hold():
                    self.check()
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("guard: redis unavailable: %s", exc)
            self.stop_event.wait(CHECK_S)

    def _hello(self, peer: int, incarnation: str, floor: int = 0) -> dict:
        resp = self.http.post(f"{self.cfg.node_urls[peer]}/sync/hello",
                              json={"from": self.cfg.node_id, "incarnation": incarnation,
                                    "floor": floor},
                              timeout=self.cfg.replication_timeout_s)
        if resp.status_code != 200:
            raise requests.RequestException(f"HTTP {resp.status_code}")
        return resp.json()

    def _ask_all(self, incarnation: str, floor: int = 0) -> tuple[dict[int, dict], list[int]]:
        answers, missing = {}, []
        for peer in self.cfg.peers:
            try:
                answers[peer] = self._hello(peer, incarnation, floor)
            except (requests.RequestException, ValueError):
                missing.append(peer)
        return answers, missing

    def _deliver_own(self, answers: dict[int, dict]) -> None:
        """Our own forgotten writes still waiting in a peer's buffer: deliver them here (their
        dependencies came with the state transfer), so our clock covers only what we hold."""
        me = self.cfg.node_id
        own = self.store.clock()[me]
        waiting = {m["vc"][me]: m for a in answers.values() for m in a.get("messages", [])
                   if m["vc"][me] > own}
        if waiting:
            self.store.receive(me, [{"vc": m["vc"], "key": m["key"], "value_json": m["value"]}
                                    for _, m in sorted(waiting.items())])

    def check(self) -> None:
        meta = self.store.meta_begin(uuid.uuid4().hex)
        if meta["state"] == "serving":
            return
        me = self.cfg.node_id
        answers, missing = self._ask_all(meta["incarnation"])
        own = self.store.clock()[me]
        seen = max([max(a["seen"], a["buffered"]) for a in answers.values()], default=0)
        other_self = any(a["incarnation"] not in (None, meta["incarnation"])
                         for a in answers.values())
        forgot = meta["forgot"] or seen > own or other_self
        reason = ("forgot its data: taking state from the peers" if forgot else
                  "asking every peer what it knows of this node")
        if missing:
            reason += f"; waiting for node(s) {', '.join(str(p + 1) for p in missing)} to answer"
        forgot, seen = self.store.meta_note(forgot, seen, reason)
        if missing:
            return
        if not forgot:
            if self.store.meta_finish(meta["run_id"], 0):
                log.info("verified with every peer: serving")
            return
        log.warning("node forgot writes its peers saw (up to entry %d): recovering", seen)
        deadline = time.monotonic() + self.cfg.recovery_wait_s
        while True:
            for peer in self.cfg.peers:
                result = self.sync.pull(peer)
                if result.result != "ok":
                    log.warning("recovery: pull from node %d failed: %s", peer, result.result)
                    return  # retried on the next check
            answers, missing = self._ask_all(meta["incarnation"])
            if missing:
                return
            self._deliver_own(answers)
            own = self.store.clock()[me]
            if all(a["buffered"] <= own for a in answers.values()):
                break
            if time.monotonic() > deadline or self.stop_event.wait(0.2):
                break  # what a peer still buffers can never be delivered: it is lost
        # Every peer records the new floor before we serve: forgetting again (even before any
        # new write leaves this node) still restarts past it.
        floor = max(self.store.clock()[me], seen) + RECOVERY_SKIP
        answers, missing = self._ask_all(meta["incarnation"], floor)
        if missing:
            return
        if self.store.meta_finish(meta["run_id"], floor):
            log.warning("recovered: own entry moved %d past the highest seen", RECOVERY_SKIP)
            for peer in self.cfg.peers:
                try:
                    self.http.post(f"{self.cfg.node_urls[peer]}/sync/kick",
                                   json={"from": me}, timeout=self.cfg.replication_timeout_s)
                except requests.RequestException:
                    pass  # its periodic round will learn the jump
