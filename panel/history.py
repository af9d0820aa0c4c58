"""History charts from Prometheus, as pure functions: the queries, the steps, and the charts.

Read with range queries, so a reload or a second browser sees the same history. Every chart
is one PromQL expression; a series' name comes from the label named in `by`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from panel.api import Json

# label -> (range in s, step in s): about 300 points per series whatever the range
RANGES: dict[str, tuple[int, int]] = {"5 min": (300, 2), "1 h": (3600, 15), "6 h": (21600, 90)}


@dataclass(frozen=True)
class Chart:
    title: str
    expr: str  # `{w}` is replaced by the rate window
    by: str  # the label that names a series
    unit: str


GRID_CHARTS = (
    Chart("Load (kW)", "sum by (substation) (substation_load_watts) / 1000", "substation", "kW"),
    Chart("Utilisation", "max by (substation) (substation_utilization_ratio)", "substation",
          "ratio"),
    Chart("Allocated sessions", "sum by (substation) (substation_active_sessions)", "substation",
          "sessions"),
    Chart("Queue length", "sum by (job) (grid_queue_length)", "job", "requests"),
)
KV_CHARTS = (
    Chart("PUT rate (/s)",
          'sum by (instance) (rate(http_requests_total{job="kv-node",method="PUT"}[{w}]))',
          "instance", "per s"),
    Chart("Visibility latency p99 (s)",
          "histogram_quantile(0.99, sum by (le, instance) "
          "(rate(kv_replication_latency_seconds_bucket[{w}])))", "instance", "s"),
    Chart("Buffered messages", "sum by (instance) (kv_buffer_messages)", "instance", "messages"),
    Chart("Outbox depth", "sum by (instance) (kv_outbox_messages)", "instance", "messages"),
)


def rate_window(step_s: int) -> str:
    """A rate() window that spans several scrapes at any step."""
    return f"{max(60, 4 * step_s)}s"


def query_for(chart: Chart, step_s: int) -> str:
    return chart.expr.replace("{w}", rate_window(step_s))


def matrix_rows(data: Json, by: str) -> list[dict[str, Any]]:
    """Prometheus matrix data → rows {t (ms), series, value}; NaN/Inf samples dropped."""
    rows = []
    for series in data.get("result") or []:
        name = (series.get("metric") or {}).get(by) or "total"
        for stamp, raw in series.get("values") or []:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                rows.append({"t": float(stamp) * 1000, "series": str(name), "value": value})
    return rows


def live_rows(samples: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """The fallback: samples the page took itself ({"t": s, "series": name, key: value})."""
    def name(sample: dict[str, Any], key: str) -> str:
        return f"{sample['series']} {key}" if len(keys) > 1 else str(sample["series"])

    return [{"t": s["t"] * 1000, "series": name(s, k), "value": float(s[k])}
            for s in samples for k in keys if isinstance(s.get(k), int | float)]


def history_spec(rows: list[dict[str, Any]], title: str, unit: str) -> dict[str, Any]:
    """Vega-Lite: one line per series over time."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": title, "fontSize": 12, "anchor": "start"},
        "data": {"values": rows},
        "height": 130,
        "mark": {"type": "line", "interpolate": "monotone"},
        "encoding": {
            "x": {"field": "t", "type": "temporal", "title": None},
            "y": {"field": "value", "type": "quantitative", "title": unit},
            "color": {"field": "series", "type": "nominal", "title": None},
            "tooltip": [{"field": "series"},
                        {"field": "t", "type": "temporal", "timeUnit": "hoursminutesseconds"},
                        {"field": "value", "format": ".3~f"}],
        },
    }
