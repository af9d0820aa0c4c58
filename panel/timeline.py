"""The delivery timeline at any size, as pure functions: which events to fetch, and how to draw
a window of them.

A node's log can hold 100,000 deliveries; the page never holds more than one window of them per
node (WINDOWS: the latest N, or N older ones when paging back through `/events?since=`). A window
small enough is drawn one mark per delivery (views_kv.timeline_spec); a denser one is drawn
aggregated: deliveries per time bucket per origin, with the buffered ones as their own red
series, and the distribution of buffered time. The aggregate is computed here, so the chart
gets a few hundred rows whatever the window size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from panel.api import Json
from panel.render import format_ms, node_label

WINDOWS = (100, 1_000, 10_000)  # events per node the page can show at once
MARKS_MAX = 400  # above this many events per node, one mark each is unreadable: aggregate
BUCKETS_MAX = 240  # time buckets in the aggregated view
NICE_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
# buffered time bins (upper bounds in ms; the last is open)
BUFFER_BINS_MS = (10, 100, 500, 1_000, 3_000, 10_000)
EVENTS_PAGE_MAX = 10_000  # the node's limit per /events call


@dataclass(frozen=True)
class Fetch:
    """One /events call: `since` and `limit`."""

    since: int
    limit: int


def latest_start(vector_clock: Sequence[int] | None, window: int) -> int:
    """Where to start reading for the latest `window` deliveries without reading the whole log.

    Each delivery advances exactly one entry of the node's clock by one, so the clock's sum is
    the log's last seq (a state transfer may break that; the caller then reads on from there).
    """
    if not vector_clock:
        return 0
    try:
        last = sum(int(x) for x in vector_clock)
    except (TypeError, ValueError):
        return 0
    return max(0, last - window)


def older_page(oldest_seq: int, window: int) -> Fetch | None:
    """The window just before the one whose oldest delivery is `oldest_seq`; None at the start."""
    if oldest_seq <= 1:
        return None
    since = max(0, oldest_seq - 1 - window)
    return Fetch(since, min(window, oldest_seq - 1 - since, EVENTS_PAGE_MAX))


def keep_window(events: list[Json], new: list[Json], window: int) -> list[Json]:
    """The last `window` events of `events` + `new` (new ones are after the old ones by seq;
    duplicates by seq dropped)."""
    last = events[-1].get("seq", 0) if events else 0
    fresh = [e for e in new if (e.get("seq") or 0) > last]
    merged = events + fresh
    return merged[-window:] if len(merged) > window else merged


def is_dense(events_by_node: dict[str, list[Json]], marks_max: int = MARKS_MAX) -> bool:
    return any(len(events) > marks_max for events in events_by_node.values())


def bucket_seconds(span_s: float, buckets_max: int = BUCKETS_MAX) -> int:
    """The smallest nice bucket that cuts `span_s` into at most `buckets_max` buckets."""
    for size in NICE_BUCKETS_S:
        if span_s / size <= buckets_max:
            return size
    return int(span_s // buckets_max) + 1


def _ts_s(event: Json) -> float | None:
    ts = event.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return None
    return ts / 1000 if ts > 1e11 else float(ts)


def rate_rows(events_by_node: dict[str, list[Json]],
              buckets_max: int = BUCKETS_MAX) -> tuple[list[dict[str, Any]], int]:
    """Deliveries per second per origin (and the buffered ones as their own series), per node,
    in time buckets; (rows, bucket size in s). Events without a timestamp are left out."""
    stamps = [t for events in events_by_node.values() for e in events
              if (t := _ts_s(e)) is not None]
    if not stamps:
        return [], 1
    start = min(stamps)
    size = bucket_seconds(max(stamps) - start, buckets_max)
    counts: Counter[tuple[str, int, str]] = Counter()
    for node, events in events_by_node.items():
        for event in events:
            t = _ts_s(event)
            if t is None:
                continue
            bucket = int((t - start) // size)
            counts[(node, bucket, "from " + node_label(event.get("origin")))] += 1
            if (event.get("buffered_ms") or 0) > 0:
                counts[(node, bucket, "buffered")] += 1
    rows = [{"node": node, "t": (start + bucket * size) * 1000, "series": series,
             "per_s": round(n / size, 3), "count": n}
            for (node, bucket, series), n in sorted(counts.items())]
    return rows, size


def bin_label(ms: float) -> str:
    lower = 0
    for upper in BUFFER_BINS_MS:
        if ms <= upper:
            return f"{format_ms(lower)}–{format_ms(upper)}" if lower else f"≤ {format_ms(upper)}"
        lower = upper
    return f"> {format_ms(BUFFER_BINS_MS[-1])}"


BIN_ORDER = [bin_label(u) for u in BUFFER_BINS_MS] + [bin_label(BUFFER_BINS_MS[-1] + 1)]


def buffered_rows(events_by_node: dict[str, list[Json]]) -> list[dict[str, Any]]:
    """How long buffered deliveries waited, as counts per bin per node."""
    counts: Counter[tuple[str, str]] = Counter()
    for node, events in events_by_node.items():
        for event in events:
            ms = event.get("buffered_ms") or 0
            if isinstance(ms, int | float) and ms > 0:
                counts[(node, bin_label(ms))] += 1
    return [{"node": node, "waited": label, "deliveries": n}
            for (node, label), n in sorted(counts.items(),
                                           key=lambda kv: (kv[0][0], BIN_ORDER.index(kv[0][1])))]


def rate_spec(rows: list[dict[str, Any]], bucket_s: int) -> dict[str, Any]:
    """Vega-Lite: deliveries per second per origin as lines per node; buffered ones in red."""
    origins = sorted({r["series"] for r in rows if r["series"] != "buffered"})
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    domain = [*origins, "buffered"]
    colors = [palette[i % len(palette)] for i in range(len(origins))] + ["#d62728"]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": rows},
        "facet": {"row": {"field": "node", "type": "nominal", "title": None}},
        "spec": {
            "height": 90,
            "width": "container",
            "layer": [
                {"mark": {"type": "line", "interpolate": "step-after"},
                 "encoding": {
                     "x": {"field": "t", "type": "temporal", "title": None},
                     "y": {"field": "per_s", "type": "quantitative",
                           "title": f"deliveries/s ({bucket_s} s buckets)"},
                     "color": {"field": "series", "type": "nominal", "title": None,
                               "scale": {"domain": domain, "range": colors}},
                     "strokeWidth": {"condition": {"test": "datum.series == 'buffered'",
                                                   "value": 3}, "value": 1.5},
                     "tooltip": [{"field": "series"}, {"field": "t", "type": "temporal",
                                                       "timeUnit": "hoursminutesseconds"},
                                 {"field": "count"}, {"field": "per_s"}]}},
                {"transform": [{"filter": "datum.series == 'buffered'"}],
                 "mark": {"type": "point", "filled": True, "color": "#d62728", "size": 40},
                 "encoding": {"x": {"field": "t", "type": "temporal"},
                              "y": {"field": "per_s", "type": "quantitative"}}},
            ],
        },
        "resolve": {"scale": {"y": "independent"}},
    }


def buffered_spec(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Vega-Lite: how many buffered deliveries waited how long, per node."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": rows},
        "mark": {"type": "bar", "color": "#d62728"},
        "height": 140,
        "encoding": {
            "x": {"field": "waited", "type": "ordinal", "sort": BIN_ORDER,
                  "title": "time waited in the buffer"},
            "xOffset": {"field": "node"},
            "y": {"field": "deliveries", "type": "quantitative", "title": "deliveries"},
            "opacity": {"field": "node", "type": "nominal", "title": "node",
                        "scale": {"range": [1.0, 0.7, 0.45, 0.3]}},
            "tooltip": [{"field": "node"}, {"field": "waited"}, {"field": "deliveries"}],
        },
    }


def window_caption(events_by_node: dict[str, list[Json]], paging: bool) -> str:
    """Which deliveries the window holds, per node, and how many of them were buffered."""
    parts = []
    for node, events in events_by_node.items():
        if not events:
            parts.append(f"{node}: none")
            continue
        buffered = sum(1 for e in events if (e.get("buffered_ms") or 0) > 0)
        parts.append(f"{node}: #{events[0].get('seq')}–#{events[-1].get('seq')} "
                     f"({len(events):,} deliveries, {buffered:,} buffered)")
    return ("older deliveries" if paging else "latest deliveries") + " — " + "; ".join(parts)
