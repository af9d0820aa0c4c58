"""All of a node's state, held in its own Redis and changed only by atomic Lua steps.

Keys (one Redis per node): kv:vc (clock JSON), kv:store (hash key -> siblings JSON), kv:keys
(zset of keys, for paging), kv:idx:<origin> (zset key -> own entry of its sibling from origin,
for state transfer), kv:dig:* (hash-bucket digest), kv:buffer (hash "origin:counter" -> waiting
message) + kv:bufq (its arrival order), kv:log + kv:logseq (delivery log), kv:outbox:<peer>,
kv:needsync (peers whose outbox was dropped), kv:meta (state, incarnation, verified run_id),
kv:incarnations + kv:floors (what peers told us of themselves), kv:sync:<peer> (last
anti-entropy exchange),
channels kv:wake:<peer> and kv:ae:wake, kv:links / kv:linkstate:<peer> (fault injection).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from common import lua
from nodes import vclock
from nodes.config import NodeConfig

VC, STORE, BUFFER, BUFQ, LOG, LOGSEQ, LINKS, KEYS, META, NEEDSYNC = (
    "kv:vc", "kv:store", "kv:buffer", "kv:bufq", "kv:log", "kv:logseq", "kv:links", "kv:keys",
    "kv:meta", "kv:needsync")
AE_WAKE, AE_DUE = "kv:ae:wake", "kv:ae:due"
LOG_VALUE_MAX = 64 * 1024  # larger values appear in /events as null: the log stays small
STATUS_BUFFER_MAX = 100  # /status shows the oldest waiting messages only
DIGEST_BUCKETS = 64
# Scripts that touch the store get the shared helpers of _lib.lua prepended; the others not.
_WITH_LIB = ("local_write", "receive", "sync_delta", "sync_leaves", "sync_apply", "hello",
             "meta_finish", "digest_rebuild")
_NO_LIB = ("ack", "events", "meta_begin", "meta_note", "needsync_clear")


class NotServing(Exception):
    """The node refuses local writes: it is recovering or has not verified its Redis."""


def outbox_key(peer: int) -> str:
    return f"kv:outbox:{peer}"


def wake_channel(peer: int) -> str:
    """Pub/sub channel a local write (or a link change) publishes on to wake a sender."""
    return f"kv:wake:{peer}"


def linkstate_key(peer: int) -> str:
    return f"kv:linkstate:{peer}"


def sync_key(peer: int) -> str:
    return f"kv:sync:{peer}"


def load_scripts(client: redis.Redis) -> dict[str, Script]:
    """The node's scripts, through the one loader (common/lua.py)."""
    return {**lua.load_scripts(client, "nodes", *_WITH_LIB, prelude="_lib"),
            **lua.load_scripts(client, "nodes", *_NO_LIB)}


def _log_value(value_json: str) -> str:
    return value_json if len(value_json) <= LOG_VALUE_MAX else "null"


def decode_siblings(raw: str | None) -> list[dict]:
    """Stored siblings carry the value as JSON text; the API returns it decoded."""
    if not raw:
        return []
    return [{"value": json.loads(s["value"]), "version": [int(x) for x in s["version"]],
             "origin": int(s["origin"])} for s in json.loads(raw)]


@dataclass
class Delivery:
    origin: int
    buffered_ms: int


@dataclass
class ReceiveResult:
    vector_clock: list[int]
    duplicates: int
    stored: int
    buffer_size: int
    delivered: list[Delivery]
    acked: int
    refused: bool


@dataclass
class ApplyResult:
    vector_clock: list[int]
    keys_repaired: int
    versions_applied: int
    buffered_dropped: int
    delivered: int


def connect(cfg: NodeConfig) -> redis.Redis:
    """A client of the node's Redis, as every part of the node uses it (each background
    thread holds its own, so a blocking wait never takes a request's connection)."""
    return redis.Redis.from_url(cfg.redis_url, decode_responses=True, socket_timeout=10,
                                health_check_interval=10)


class NodeStore:
    def __init__(self, cfg: NodeConfig, client: redis.Redis | None = None):
        self.cfg = cfg
        self.redis = client or connect(cfg)
        self.scripts = load_scripts(self.redis)
        self._outboxes = [outbox_key(p) for p in cfg.peers]
        self._peer_args = [a for p in cfg.peers for a in (p, wake_channel(p))]

    # -- state transitions (each one Lua call) --------------------------------------------
    def local_write(self, key: str, value_json: str) -> tuple[list[int], list[dict]]:
        result = self.scripts["local_write"](
            keys=self._outboxes,
            args=[self.cfg.n, self.cfg.node_id, key, value_json, self.cfg.log_max,
                  _log_value(value_json), self.cfg.outbox_max, *self._peer_args])
        if result[0] == "refused":
            raise NotServing(result[1])
        vc_json, siblings, _seq = result
        return json.loads(vc_json), decode_siblings(siblings)

    def receive(self, origin: int, messages: list[dict]) -> ReceiveResult:
        """`messages`: validated [{"vc", "key", "value_json"}] from `origin`, in send order."""
        args: list = [self.cfg.n, self.cfg.log_max, origin, self.cfg.buffer_max]
        for m in messages:
            wire = {"vc": m["vc"], "key": m["key"], "value": m["value_json"]}
            if len(m["value_json"]) > LOG_VALUE_MAX:
                wire["log_value"] = "null"
            args.append(json.dumps(wire, separators=(",", ":")))
        vc_json, dups, stored, buffered, delivered, acked, refused = self.scripts["receive"](
            args=args)
        deliveries = []
        for item in delivered:
            o, _, waited = item.partition(":")
            deliveries.append(Delivery(int(o), int(float(waited))))
        return ReceiveResult(json.loads(vc_json), int(dups), int(stored), int(buffered),
                             deliveries, int(acked), bool(int(refused)))

    def ack(self, peer: int, acked_counter: int, attempt_ms: int, now_ms: int) -> int:
        """Drop what `peer` acknowledged and mark the link healthy, in one step."""
        return int(self.scripts["ack"](keys=[outbox_key(peer), linkstate_key(peer)],
                                       args=[self.cfg.node_id, acked_counter, now_ms, attempt_ms]))

    # -- anti-entropy (see nodes/sync.py) -----------------------------------------------------
    def sync_delta(self, peer_vc: list[int], peer_top: list[str] | None
                   ) -> tuple[list[int], list[list[str]], dict[str, list[str]]]:
        """This node's clock, the siblings of every key the peer lacks, differing leaf sums."""
        vc_json, flat, leaves = self.scripts["sync_delta"](
            args=[self.cfg.n, json.dumps(peer_vc), json.dumps(peer_top or [])])
        return json.loads(vc_json), _pairs(flat), json.loads(leaves)

    def sync_leaves(self, leaves: list[str]) -> list[list[str]]:
        return _pairs(self.scripts["sync_leaves"](args=leaves)) if leaves else []

    def sync_apply(self, mode: str, peer_vc: list[int] | None, pairs: list[list[str]]
                   ) -> ApplyResult:
        args: list = [self.cfg.n, self.cfg.log_max, mode, json.dumps(peer_vc)]
        for key, siblings in pairs:
            args += [key, siblings]
        vc_json, repaired, applied, dropped, delivered = self.scripts["sync_apply"](args=args)
        return ApplyResult(json.loads(vc_json), int(repaired), int(applied), int(dropped),
                           int(delivered))

    def top_sums(self) -> list[str]:
        raw = self.redis.hgetall("kv:dig:top")
        return [raw.get(str(t), "0") for t in range(DIGEST_BUCKETS)]

    def leaf_sums(self, tops: list[str]) -> dict[str, list[str]]:
        pipe = self.redis.pipeline(transaction=False)
        for t in tops:
            pipe.hgetall(f"kv:dig:leaf:{t}")
        return {t: [raw.get(str(i), "0") for i in range(DIGEST_BUCKETS)]
                for t, raw in zip(tops, pipe.execute(), strict=True)}

    def digest_rebuild(self) -> int:
        return sum(int(self.scripts["digest_rebuild"](args=[t])) for t in range(DIGEST_BUCKETS))

    def hello(self, who: int, incarnation: str, floor: int = 0) -> dict:
        seen, buffered, prev, msgs = self.scripts["hello"](
            args=[self.cfg.n, who, incarnation, floor])
        waiting = [{"vc": m["vc"], "key": m["key"], "value": m["value"]}
                   for m in map(json.loads, msgs)]
        return {"seen": int(seen), "buffered": int(buffered), "incarnation": prev or None,
                "messages": sorted(waiting, key=lambda m: m["vc"][who])}

    def needsync(self) -> dict[int, str]:
        return {int(p): v for p, v in self.redis.hgetall(NEEDSYNC).items()}

    def clear_needsync(self, peer: int, mark: str) -> None:
        self.scripts["needsync_clear"](args=[peer, mark])

    def record_sync(self, peer: int, info: dict) -> None:
        self.redis.hset(sync_key(peer), mapping={k: json.dumps(v) for k, v in info.items()})

    # -- verification of the node's own data (see nodes/recovery.py) --------------------------
    def meta_begin(self, new_incarnation: str) -> dict:
        state, inc, forgot, max_seen, run_id, reason = self.scripts["meta_begin"](
            args=[new_incarnation])
        return {"state": state, "incarnation": inc, "forgot": forgot == "1",
                "max_seen": int(max_seen or 0), "run_id": run_id, "reason": reason or ""}

    def meta_note(self, forgot: bool, max_seen: int, reason: str) -> tuple[bool, int]:
        f, m = self.scripts["meta_note"](args=[int(forgot), max_seen, reason])
        return f == "1", int(m)

    def meta_finish(self, run_id: str, floor: int) -> bool:
        return bool(int(self.scripts["meta_finish"](
            args=[self.cfg.n, self.cfg.node_id, run_id, floor])))

    def state(self) -> tuple[str, str]:
        """("serving", "") or ("recovering", why): what /health and /status report."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(META, "state", "verified_run_id", "reason")
        pipe.info("server")
        (state, verified, reason), info = pipe.execute()
        if state == "serving" and verified == info["run_id"]:
            return "serving", ""
        if state == "serving" or state is None:
            return "recovering", "Redis restarted or is empty: not yet verified with the peers"
        return "recovering", reason or "verifying with the peers"

    # -- reads -----------------------------------------------------------------------------
    def clock(self) -> list[int]:
        raw = self.redis.get(VC)
        return json.loads(raw) if raw else vclock.zero(self.cfg.n)

    def read(self, key: str) -> tuple[list[int], list[dict]]:
        """The clock and the key's siblings, read together in one MULTI."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(VC)
        pipe.hget(STORE, key)
        raw_vc, raw_sib = pipe.execute()
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        return vc, decode_siblings(raw_sib)

    def list_keys(self, prefix: str, cursor: str | None, limit: int
                  ) -> tuple[list[dict], str | None, list[int]]:
        """Keys after `cursor` (or from `prefix`) in byte order, with their winners.

        Lexicographic paging over kv:keys: each key present for the whole listing is returned
        exactly once, however the store changes in between (like SCAN, without its repeats).
        """
        p = prefix.encode()
        if cursor is not None and cursor.encode() >= p:
            start = b"(" + cursor.encode()
        else:  # no cursor, or one before the prefix's range: start at the prefix
            start = b"[" + p if p else b"-"
        end = b"[" + p + b"\xff" if p else b"+"  # 0xff never occurs in UTF-8
        keys = self.redis.zrangebylex(KEYS, start, end, start=0, num=limit + 1)
        more = len(keys) > limit
        keys = keys[:limit]
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(VC)
        if keys:
            pipe.hmget(STORE, keys)
        raw_vc, *rest = pipe.execute()
        items = []
        for key, raw in zip(keys, rest[0] if rest else [], strict=True):
            if raw:
                siblings = decode_siblings(raw)
                best = vclock.winner(siblings)
                items.append({"key": key, "value": best["value"], "version": best["version"],
                              "siblings": len(siblings)})
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        return items, (keys[-1] if more else None), vc

    def snapshot(self) -> dict:
        """What /status shows: constant size and cost, whatever the store holds."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(VC)
        pipe.hlen(STORE)
        pipe.hlen(BUFFER)
        pipe.zrange(BUFQ, 0, STATUS_BUFFER_MAX - 1)
        pipe.hgetall(LINKS)
        pipe.hgetall(NEEDSYNC)
        pipe.time()
        for peer in self.cfg.peers:
            pipe.llen(outbox_key(peer))
            pipe.hgetall(linkstate_key(peer))
            pipe.hgetall(sync_key(peer))
        raw_vc, nkeys, nbuffered, oldest, links, needsync, now, *rest = pipe.execute()
        raw_msgs = self.redis.hmget(BUFFER, oldest) if oldest else []
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        pending = []
        for raw in raw_msgs:
            if not raw:
                continue  # delivered between the two reads
            m = json.loads(raw)
            origin, mvc = int(m["origin"]), [int(x) for x in m["vc"]]
            pending.append({
                "origin": origin, "vc": mvc, "key": m["key"], "value": json.loads(m["value"]),
                "waited_ms": max(0, now_ms - int(m["at"])),
                "waiting_for": {str(k): v for k, v in vclock.missing(mvc, origin, vc).items()},
            })
        pending.sort(key=lambda p: (-p["waited_ms"], p["origin"], p["vc"][p["origin"]]))
        outbox, link_info, sync = {}, {}, {}
        for i, peer in enumerate(self.cfg.peers):
            depth, state, last_sync = rest[3 * i:3 * i + 3]
            outbox[str(peer)] = depth
            link_info[str(peer)] = {**self.link_settings(links, peer), **_typed(state)}
            sync[str(peer)] = {k: json.loads(v) for k, v in last_sync.items()}
        state, reason = self.state()
        return {
            "state": state,
            **({"reason": reason} if reason else {}),
            "vector_clock": vc,
            "keys": nkeys,
            "buffer": pending,
            "buffered": nbuffered,
            "outbox": outbox,
            "needs_state_transfer": sorted(int(p) for p in needsync),
            "links": link_info,
            "sync": sync,
            "limits": {"outbox_max": self.cfg.outbox_max, "buffer_max": self.cfg.buffer_max,
                       "log_max": self.cfg.log_max},
        }

    def events(self, since: int, limit: int) -> tuple[list[dict], int]:
        """Up to `limit` log entries with seq > since, and the seq to ask from next."""
        raw = self.scripts["events"](keys=[LOG, LOGSEQ], args=[since, limit])
        events = [json.loads(item) for item in raw]
        return events, (events[-1]["seq"] if events else since)

    # -- links (fault injection) -----------------------------------------------------------
    @staticmethod
    def link_settings(links: dict, peer: int) -> dict:
        raw = links.get(str(peer))
        settings = {"delay_ms": 0, "paused": False}
        if raw:
            settings.update(json.loads(raw))
        return settings

    def get_link(self, peer: int) -> dict:
        return self.link_settings(self.redis.hgetall(LINKS), peer)

    def set_link(self, peer: int, delay_ms: int | None, paused: bool | None) -> dict:
        current = self.get_link(peer)
        if delay_ms is not None:
            current["delay_ms"] = delay_ms
        if paused is not None:
            current["paused"] = paused
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(LINKS, str(peer), json.dumps(current))
        pipe.publish(wake_channel(peer), 1)  # let a waiting sender notice the change now
        pipe.execute()
        return current

    def all_links(self) -> dict[str, dict]:
        links = self.redis.hgetall(LINKS)
        return {str(p): self.link_settings(links, p) for p in self.cfg.peers}

    def gauges(self) -> tuple[list[int], int, dict[int, int], int, bool]:
        """Clock, buffer size, outbox depths, key count and serving, for the metrics collector."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(VC)
        pipe.hlen(BUFFER)
        pipe.hlen(STORE)
        for peer in self.cfg.peers:
            pipe.llen(outbox_key(peer))
        raw_vc, buffered, nkeys, *depths = pipe.execute()
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        serving = self.state()[0] == "serving"
        return vc, buffered, dict(zip(self.cfg.peers, depths, strict=True)), nkeys, serving


def _pairs(flat: list[str]) -> list[list[str]]:
    return [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]


def _typed(state: dict) -> dict:
    out: dict = {}
    for key, value in state.items():
        if key in ("consecutive_failures", "last_ack_ms", "last_attempt_ms"):
            out[key] = int(value)
        else:
            out[key] = value
    return out
