"""All of a node's state, held in its own Redis and changed only by atomic Lua steps.

Keys (one Redis per node): kv:vc (clock JSON), kv:store (hash key -> siblings JSON),
kv:buffer (hash "origin:counter" -> waiting message), kv:log + kv:logseq (delivery log),
kv:outbox:<peer> (list of wire messages), channel kv:wake:<peer> (sender wake-up), kv:links (hash
peer -> fault injection), kv:linkstate:<peer> (sender's last result).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from common.lua import load_scripts
from nodes import vclock
from nodes.config import NodeConfig

VC, STORE, BUFFER, LOG, LOGSEQ, LINKS = (
    "kv:vc", "kv:store", "kv:buffer", "kv:log", "kv:logseq", "kv:links")
LOG_VALUE_MAX = 64 * 1024  # larger values appear in /events as null: the log stays small


def outbox_key(peer: int) -> str:
    return f"kv:outbox:{peer}"


def wake_channel(peer: int) -> str:
    """Pub/sub channel a local write (or a link change) publishes on to wake a sender."""
    return f"kv:wake:{peer}"


def linkstate_key(peer: int) -> str:
    return f"kv:linkstate:{peer}"


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


class NodeStore:
    def __init__(self, cfg: NodeConfig, client: redis.Redis | None = None):
        self.cfg = cfg
        self.redis = client or redis.Redis.from_url(
            cfg.redis_url, decode_responses=True, socket_timeout=5, health_check_interval=10)
        self.scripts = load_scripts(self.redis, "nodes", "local_write", "receive", "ack", "events")
        self._write_keys = [VC, STORE, LOG, LOGSEQ] + [outbox_key(p) for p in cfg.peers]
        self._wake_channels = [wake_channel(p) for p in cfg.peers]

    # -- state transitions (each one Lua call) --------------------------------------------
    def local_write(self, key: str, value_json: str) -> tuple[list[int], list[dict]]:
        vc_json, siblings, _seq = self.scripts["local_write"](
            keys=self._write_keys,
            args=[self.cfg.n, self.cfg.node_id, key, value_json, self.cfg.log_max,
                  _log_value(value_json), *self._wake_channels])
        return json.loads(vc_json), decode_siblings(siblings)

    def receive(self, origin: int, messages: list[dict]) -> ReceiveResult:
        """`messages`: validated [{"vc", "key", "value_json"}] from `origin`, in send order."""
        args: list = [self.cfg.n, self.cfg.log_max, origin]
        for m in messages:
            wire = {"vc": m["vc"], "key": m["key"], "value": m["value_json"]}
            if len(m["value_json"]) > LOG_VALUE_MAX:
                wire["log_value"] = "null"
            args.append(json.dumps(wire, separators=(",", ":")))
        vc_json, dups, stored, buffered, delivered = self.scripts["receive"](
            keys=[VC, STORE, BUFFER, LOG, LOGSEQ], args=args)
        deliveries = []
        for item in delivered:
            o, _, waited = item.partition(":")
            deliveries.append(Delivery(int(o), int(float(waited))))
        return ReceiveResult(json.loads(vc_json), int(dups), int(stored), int(buffered), deliveries)

    def ack(self, peer: int, acked_counter: int, attempt_ms: int, now_ms: int) -> int:
        """Drop what `peer` acknowledged and mark the link healthy, in one step."""
        return int(self.scripts["ack"](keys=[outbox_key(peer), linkstate_key(peer)],
                                       args=[self.cfg.node_id, acked_counter, now_ms, attempt_ms]))

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

    def snapshot(self) -> dict:
        """Clock, store, buffer, outbox depths and link settings in one MULTI."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(VC)
        pipe.hgetall(STORE)
        pipe.hgetall(BUFFER)
        pipe.hgetall(LINKS)
        pipe.time()
        for peer in self.cfg.peers:
            pipe.llen(outbox_key(peer))
            pipe.hgetall(linkstate_key(peer))
        raw_vc, store, buffer, links, now, *rest = pipe.execute()
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        pending = []
        for raw in buffer.values():
            m = json.loads(raw)
            origin, mvc = int(m["origin"]), [int(x) for x in m["vc"]]
            pending.append({
                "origin": origin, "vc": mvc, "key": m["key"], "value": json.loads(m["value"]),
                "waited_ms": max(0, now_ms - int(m["at"])),
                "waiting_for": {str(k): v for k, v in vclock.missing(mvc, origin, vc).items()},
            })
        pending.sort(key=lambda p: (p["origin"], p["vc"][p["origin"]]))
        outbox, link_info = {}, {}
        for i, peer in enumerate(self.cfg.peers):
            depth, state = rest[2 * i], rest[2 * i + 1]
            outbox[str(peer)] = depth
            link_info[str(peer)] = {**self.link_settings(links, peer), **_typed(state)}
        return {
            "vector_clock": vc,
            "store": {k: vclock.winner(decode_siblings(v))["value"] for k, v in store.items()},
            "buffer": pending,
            "outbox": outbox,
            "links": link_info,
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

    def gauges(self) -> tuple[list[int], int, dict[int, int]]:
        """Clock, buffer size and outbox depths, for the metrics collector."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(VC)
        pipe.hlen(BUFFER)
        for peer in self.cfg.peers:
            pipe.llen(outbox_key(peer))
        raw_vc, buffered, *depths = pipe.execute()
        vc = json.loads(raw_vc) if raw_vc else vclock.zero(self.cfg.n)
        return vc, buffered, dict(zip(self.cfg.peers, depths, strict=True))


def _typed(state: dict) -> dict:
    out: dict = {}
    for key, value in state.items():
        if key in ("consecutive_failures", "last_ack_ms", "last_attempt_ms"):
            out[key] = int(value)
        else:
            out[key] = value
    return out
