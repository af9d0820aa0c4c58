"""Causal KV view as pure functions: node /status and /events JSON → rows, chart specs, text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nodes.vclock import merge, missing
from panel.api import ApiError, Json, Result
from panel.render import format_clock, format_ms, format_value, node_index, node_label

STORE_ROWS = 200


def store_rows(status: Json, limit: int = STORE_ROWS) -> list[dict[str, str]]:
    """Key/value rows sorted by key, at most `limit` of them."""
    store = status.get("store") or {}
    return [{"key": key, "value": format_value(store[key])} for key in sorted(store)[:limit]]


def waiting_for(message: Json, node_clock: Sequence[int] | None) -> str:
    """Which writes a buffered message still needs, e.g. "1 write from node1"."""
    need = message.get("waiting_for")  # the node says it itself; else work it out here
    if isinstance(need, dict):
        need = {node_index(k): n for k, n in need.items()}
    else:
        origin = node_index(message.get("origin"))
        vc = message.get("vc")
        if origin is None or not vc or not node_clock or len(vc) != len(node_clock):
            return "?"
        try:
            need = missing(vc, origin, node_clock)
        except (IndexError, TypeError, ValueError):
            return "?"
    if not need:
        return "deliverable now"
    return ", ".join(f"{n} write{'s' if n > 1 else ''} from {node_label(k)}"
                     for k, n in sorted(need.items(), key=lambda item: str(item[0])))


def buffer_rows(status: Json) -> list[dict[str, str]]:
    """Pending messages: who sent them, their clock, how long they waited and for what."""
    clock = status.get("vector_clock")
    rows = []
    for message in status.get("buffer") or []:
        rows.append({
            "from": node_label(message.get("origin")),
            "key": str(message.get("key")),
            "value": format_value(message.get("value"), 30),
            "clock": format_clock(message.get("vc")),
            "waited": format_ms(message.get("waited_ms")),
            "waiting for": waiting_for(message, clock),
        })
    return rows


def peer_rows(status: Json) -> list[dict[str, Any]]:
    """Per peer: outbox depth and the fault injected on this node's link to it."""
    outbox = status.get("outbox") or {}
    links = status.get("links") or {}
    peers = sorted({str(p) for p in outbox} | {str(p) for p in links},
                   key=lambda p: (node_index(p) is None, node_index(p) or 0, p))
    rows = []
    for peer in peers:
        link = links.get(peer) or links.get(_int_key(peer)) or {}
        rows.append({
            "peer": node_label(peer),
            "outbox": int(outbox.get(peer, outbox.get(_int_key(peer), 0)) or 0),
            "delay": format_ms(link.get("delay_ms", 0)),
            "paused": bool(link.get("paused", False)),
            "failures": int(link.get("consecutive_failures", 0) or 0),
        })
    return rows


def _int_key(text: str) -> object:
    return int(text) if text.isdigit() else text


def link_rows(statuses: dict[str, Result]) -> list[dict[str, Any]]:
    """Every node pair with a non-default link (delayed or paused), for the links table."""
    rows = []
    for name, status in statuses.items():
        if isinstance(status, ApiError):
            continue
        for row in peer_rows(status):
            if row["delay"] not in ("0 ms", "—") or row["paused"]:
                rows.append({"link": f"{name} → {row['peer']}", "delay": row["delay"],
                             "paused": row["paused"], "outbox": row["outbox"]})
    return rows


def _count(status: Json, count_field: str, list_field: str) -> int:
    """A count the node reports (`keys`, `buffered`), else the length of the list it sent."""
    value = status.get(count_field)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return len(status.get(list_field) or {})


def node_headline(status: Json) -> dict[str, str]:
    """The numbers at the top of a node's column."""
    outbox = status.get("outbox") or {}
    return {
        "clock": format_clock(status.get("vector_clock")),
        "keys": f"{_count(status, 'keys', 'store'):,}",
        "buffered": f"{_count(status, 'buffered', 'buffer'):,}",
        "outbox": f"{sum(int(v or 0) for v in outbox.values()):,}",
    }


def node_state(status: Json) -> tuple[str | None, str]:
    """(state, level) from /status: "serving" is fine, anything else (recovering) a warning;
    (None, "") when the node does not report a state."""
    state = status.get("state")
    if not isinstance(state, str) or not state:
        return None, ""
    return state, ("ok" if state == "serving" else "warning")


def sync_rows(status: Json) -> list[dict[str, Any]]:
    """Anti-entropy per peer from /status's `sync` ({peer: {rounds, repairs, ...}}), one row per
    peer with whatever numbers the node reports; a flat dict is one row."""
    sync = status.get("sync")
    if not isinstance(sync, dict) or not sync:
        return []
    if all(isinstance(v, dict) for v in sync.values()):
        return [{"peer": node_label(_int_key(str(peer))),
                 **{k: _cell(v) for k, v in info.items()}}
                for peer, info in sorted(sync.items(), key=lambda kv: str(kv[0]))]
    return [{"peer": "all", **{k: _cell(v) for k, v in sync.items()}}]


def _cell(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) or value is None else \
        format_value(value, 40)


# --- causal context carried by the panel's session -------------------------------------------

def carry_context(context: list[int] | None, result: Result) -> list[int] | None:
    """The session's context after a PUT/GET answer: everything it has observed so far.

    The node's clock at answer time (`vector_clock`) is what the client has observed; merging
    it keeps read-your-writes and monotonic reads when the next call goes to another node.
    A 404 also carries the node's clock. Errors leave the context unchanged.
    """
    observed = None
    if isinstance(result, ApiError):
        if result.status == 404 and result.body:
            observed = result.body.get("vector_clock")
    else:
        observed = result.get("vector_clock") or result.get("version")
    if not observed:
        return context
    if context is None or len(context) != len(observed):
        return list(observed)
    return merge(context, observed)


def kv_result_text(action: str, node: str, key: str, result: Result) -> str:
    """One sentence about a PUT/GET, with the clocks."""
    if isinstance(result, ApiError):
        if result.status == 404:
            clock = format_clock((result.body or {}).get("vector_clock"))
            return f"GET {key} at {node}: not found (node clock {clock})"
        if result.status == 503:
            return (f"{action} {key} at {node}: {result.reason} — the node has not caught up "
                    f"with the session's context yet; retry in a moment")
        return f"{action} {key} at {node} failed: {result.reason}"
    siblings = result.get("siblings") or []
    conflict = f"; {len(siblings)} concurrent siblings" if len(siblings) > 1 else ""
    return (f"{action} {key} at {node}: {key} = {format_value(result.get('value'))} "
            f"(version {format_clock(result.get('version'))}, node clock "
            f"{format_clock(result.get('vector_clock'))}{conflict})")


# --- delivery timeline ------------------------------------------------------------------------

TIMELINE_KEEP = 300


def merge_events(cached: list[Json], new: list[Json], keep: int = TIMELINE_KEEP) -> list[Json]:
    """Append newly fetched events (by seq, no duplicates), keeping the last `keep`."""
    seen = {event.get("seq") for event in cached}
    merged = cached + [event for event in new if event.get("seq") not in seen]
    merged.sort(key=lambda event: event.get("seq") or 0)
    return merged[-keep:]


def delivery_kind(event: Json) -> str:
    if event.get("kind") == "local":
        return "local write"
    return "replicated after buffering" if (event.get("buffered_ms") or 0) > 0 else "replicated"


def timeline_rows(events_by_node: dict[str, list[Json]]) -> list[dict[str, Any]]:
    """One row per delivery, per node, in each node's delivery order (its log's seq)."""
    rows = []
    for node, events in events_by_node.items():
        for order, event in enumerate(events):
            rows.append({
                "node": node,
                "seq": event.get("seq"),
                "order": order,
                "origin": node_label(event.get("origin")),
                "key": str(event.get("key")),
                "label": str(event.get("key")),
                "value": format_value(event.get("value"), 40),
                "version": format_clock(event.get("version")),
                "delivery": delivery_kind(event),
                "buffered_ms": int(event.get("buffered_ms") or 0),
            })
    return rows


def timeline_spec(rows: list[dict[str, Any]], last: int = 40) -> dict[str, Any]:
    """Vega-Lite: per node, its last `last` deliveries left to right in delivery order.

    Colour is the write's origin, shape the kind of delivery; deliveries that waited in the
    buffer are drawn large with a ring, so a causally-later write held back is easy to spot.
    """
    recent = []
    for node in dict.fromkeys(row["node"] for row in rows):
        node_rows = [row for row in rows if row["node"] == node][-last:]
        offset = len([row for row in rows if row["node"] == node]) - len(node_rows)
        recent += [{**row, "order": row["order"] - offset + 1} for row in node_rows]
    encoding = {
        "x": {"field": "order", "type": "quantitative", "title": "delivery order at the node",
              "axis": {"tickMinStep": 1}},
        "y": {"field": "node", "type": "nominal", "title": None},
        "tooltip": [{"field": f} for f in ("node", "seq", "origin", "key", "value", "version",
                                           "delivery", "buffered_ms")],
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": recent},
        "height": 40 + 60 * max(1, len({row["node"] for row in recent})),
        "encoding": encoding,
        "layer": [*_point_layers(), *(_label_layer() if len(recent) <= 40 * max(
            1, len({row["node"] for row in recent})) else [])],
    }


def _point_layers() -> list[dict[str, Any]]:
    return [
            {"mark": {"type": "point", "filled": True, "opacity": 0.9},
             "encoding": {
                 "color": {"field": "origin", "type": "nominal", "title": "written at"},
                 "shape": {"field": "delivery", "type": "nominal", "title": "delivery",
                           "scale": {"domain": ["local write", "replicated",
                                                "replicated after buffering"],
                                     "range": ["square", "circle", "diamond"]}},
                 "size": {"condition": {"test": "datum.buffered_ms > 0", "value": 420},
                          "value": 110}}},
            {"transform": [{"filter": "datum.buffered_ms > 0"}],
             "mark": {"type": "point", "filled": False, "size": 900, "color": "#d62728",
                      "strokeWidth": 2}},
    ]


def _label_layer() -> list[dict[str, Any]]:
    """Key labels: only while there are few enough marks to read them."""
    return [{"mark": {"type": "text", "dy": -16, "fontSize": 11},
             "encoding": {"text": {"field": "label"}}}]


def timeline_caption(rows: list[dict[str, Any]]) -> str:
    buffered = [row for row in rows if row["buffered_ms"] > 0]
    if not rows:
        return "No deliveries yet."
    text = f"{len(rows)} deliveries shown"
    if buffered:
        last = buffered[-1]
        text += (f"; {len(buffered)} waited in a buffer (latest: {last['key']} from "
                 f"{last['origin']} at {last['node']}, held {format_ms(last['buffered_ms'])})")
    return text + "."
