"""Input rules for the KV API: every check that turns client input into a 4xx lives here."""

from __future__ import annotations

import json
from typing import Any

from common.web import ApiError
from nodes.config import MAX_KEY_BYTES, MAX_VALUE_BYTES


def check_key(key: str) -> str:
    if not key:
        raise ApiError(400, "key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ApiError(400, f"key over {MAX_KEY_BYTES} UTF-8 bytes")
    return key


def encode_value(body: dict[str, Any]) -> str:
    """The value as compact JSON text; 400 when missing, 413 when over 1 MiB."""
    if "value" not in body:
        raise ApiError(400, "body must have a \"value\" field")
    text = json.dumps(body["value"], separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise ApiError(413, f"value over {MAX_VALUE_BYTES} bytes")
    return text


def check_clock(raw: Any, n: int, what: str = "context") -> list[int]:
    """A vector clock: a list of exactly n non-negative integers (booleans are not integers)."""
    if not isinstance(raw, list) or len(raw) != n:
        raise ApiError(400, f"{what} must be a list of {n} non-negative integers")
    for entry in raw:
        if isinstance(entry, bool) or not isinstance(entry, int) or entry < 0:
            raise ApiError(400, f"{what} must be a list of {n} non-negative integers")
    return raw


def parse_context_param(raw: str | None, n: int) -> list[int] | None:
    """`?context=1,0,2` → [1, 0, 2]; absent → None."""
    if raw is None or raw == "":
        return None
    try:
        entries = [int(part) for part in raw.split(",")]
    except ValueError as exc:
        raise ApiError(400, f"context must be {n} comma-separated non-negative integers") from exc
    return check_clock(entries, n)


def parse_int_param(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}")
    return value


def check_replication(body: dict[str, Any], n: int, self_id: int) -> tuple[int, list[dict]]:
    """A peer's batch: {"from": j, "messages": [{"vc", "key", "value"}]} in send order."""
    origin = body.get("from")
    if isinstance(origin, bool) or not isinstance(origin, int) or not 0 <= origin < n:
        raise ApiError(400, f"unknown origin node {origin!r}", known=list(range(n)))
    if origin == self_id:
        raise ApiError(400, "a node does not replicate to itself")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list")
    checked = []
    previous = 0
    for m in messages:
        if not isinstance(m, dict):
            raise ApiError(400, "each message must be an object")
        vc = check_clock(m.get("vc"), n, "message vc")
        if vc[origin] < 1 or vc[origin] <= previous:
            raise ApiError(400, "message counters from one origin must start at 1 and increase")
        previous = vc[origin]
        key = m.get("key")
        if not isinstance(key, str):
            raise ApiError(400, "message key must be a string")
        check_key(key)
        checked.append({"vc": vc, "key": key, "value_json": encode_value(m)})
    return origin, checked


def check_link(body: dict[str, Any], n: int, self_id: int) -> tuple[int, int | None, bool | None]:
    peer = body.get("peer")
    if isinstance(peer, bool) or not isinstance(peer, int) or not 0 <= peer < n or peer == self_id:
        raise ApiError(400, f"peer must be another node's id (0..{n - 1}, not {self_id})")
    delay = body.get("delay_ms")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int)
                              or not 0 <= delay <= 600_000):
        raise ApiError(400, "delay_ms must be an integer from 0 to 600000")
    paused = body.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise ApiError(400, "paused must be true or false")
    return peer, delay, paused


def check_peer_origin(body: dict[str, Any], n: int, self_id: int) -> int:
    """The "from" of a node-to-node request: another node's id."""
    origin = body.get("from")
    if isinstance(origin, bool) or not isinstance(origin, int) or not 0 <= origin < n:
        raise ApiError(400, f"unknown origin node {origin!r}", known=list(range(n)))
    if origin == self_id:
        raise ApiError(400, "a node does not sync with itself")
    return origin


def check_digest(body: dict[str, Any], n: int) -> tuple[list[int], list[str]]:
    vc = check_clock(body.get("vc"), n, "vc")
    top = body.get("top", [])
    if not isinstance(top, list) or len(top) not in (0, 64) or not all(
            isinstance(s, str) and s.isascii() and s.isdigit() and len(s) < 20 for s in top):
        raise ApiError(400, "top must be a list of 64 decimal strings")
    return vc, top


def check_leaves(body: dict[str, Any]) -> list[str]:
    leaves = body.get("leaves")
    if not isinstance(leaves, list) or not leaves or len(leaves) > 4096:
        raise ApiError(400, "leaves must be a non-empty list of at most 4096 \"t:l\" ids")
    out = []
    for leaf in leaves:
        t, _, l_ = leaf.partition(":") if isinstance(leaf, str) else ("", "", "")
        if not (t.isascii() and t.isdigit() and l_.isascii() and l_.isdigit()
                and int(t) < 64 and int(l_) < 64):
            raise ApiError(400, "each leaf must be \"t:l\" with t and l in 0..63")
        out.append(f"{int(t)}:{int(l_)}")
    return sorted(set(out))


def check_incarnation(body: dict[str, Any]) -> str:
    inc = body.get("incarnation")
    if not isinstance(inc, str) or not 1 <= len(inc) <= 64 or not inc.isascii() \
            or not inc.isalnum():
        raise ApiError(400, "incarnation must be 1 to 64 letters or digits")
    return inc


def check_prefix(raw: str | None, name: str) -> str:
    if raw is None:
        return ""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ApiError(400, f"{name} over {MAX_KEY_BYTES} UTF-8 bytes")
    try:
        raw.encode()
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"{name} must be valid UTF-8") from exc
    return raw
