"""Smart-grid view as pure functions: balancer and substation /status JSON → rows, specs, text."""

from __future__ import annotations

from collections import Counter
from typing import Any

from panel.api import ApiError, Json, Result
from panel.render import format_time, to_epoch

STRATEGIES = ("least-utilization", "polled", "p2c", "round-robin")
HISTORY_WINDOW_S = 300.0


def _num(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


def substation_rows(balancer: Result, direct: dict[str, Result]) -> list[dict[str, Any]]:
    """One row per substation: its own /status when reachable, the balancer's view otherwise.

    `healthy` is the balancer's opinion (it routes only to healthy ones); `reachable` is whether
    the panel itself got an answer, with the reason when it did not.
    """
    seen = {}
    if not isinstance(balancer, ApiError):
        seen = {s.get("name"): s for s in balancer.get("substations") or []}
    rows = []
    for name in list(direct) + [n for n in seen if n not in direct]:
        own = direct.get(name)
        via = seen.get(name, {})
        source = own if isinstance(own, dict) else via
        load, capacity = _num(source.get("load_kw")), _num(source.get("capacity_kw"))
        utilization = source.get("utilization")
        utilization = _num(utilization) if utilization is not None else (
            load / capacity if capacity else 0.0)
        rows.append({
            "substation": name,
            "load_kw": round(load, 1),
            "capacity_kw": round(capacity, 1),
            "utilization": round(utilization, 4),
            "active_sessions": int(_num(source.get("active_sessions"))),
            "routed_total": int(_num(via.get("routed_total"))),
            "healthy": via.get("healthy") if via else None,
            "reachable": not isinstance(own, ApiError),
            "problem": str(own.reason) if isinstance(own, ApiError) else "",
        })
    return rows


def load_spec(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Vega-Lite: each substation's capacity as a grey bar with its load drawn over it."""
    values = [{**row, "headroom": f"{max(row['capacity_kw'] - row['load_kw'], 0):.1f} kW free",
               "percent": f"{row['utilization'] * 100:.0f}%"} for row in rows]
    y = {"field": "substation", "type": "nominal", "title": None, "sort": None}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "height": 40 + 45 * max(1, len(values)),
        "layer": [
            {"mark": {"type": "bar", "color": "#e6e6e6"},
             "encoding": {"y": y, "x": {"field": "capacity_kw", "type": "quantitative",
                                        "title": "kW"},
                          "tooltip": [{"field": "capacity_kw", "title": "capacity kW"}]}},
            {"mark": {"type": "bar"},
             "encoding": {
                 "y": y, "x": {"field": "load_kw", "type": "quantitative"},
                 "color": {"field": "utilization", "type": "quantitative", "title": "utilisation",
                           "scale": {"domain": [0, 0.7, 1], "range": ["#2ca02c", "#ffbf00",
                                                                        "#d62728"]},
                           "legend": {"format": ".0%"}},
                 "tooltip": [{"field": "load_kw", "title": "load kW"},
                             {"field": "percent", "title": "utilisation"},
                             {"field": "headroom"},
                             {"field": "active_sessions", "title": "sessions"}]}},
            {"mark": {"type": "text", "align": "left", "dx": 4},
             "encoding": {"y": y, "x": {"field": "capacity_kw", "type": "quantitative"},
                          "text": {"field": "percent"}}},
        ],
    }


def append_history(history: list[dict[str, Any]], rows: list[dict[str, Any]], now: float,
                   window_s: float = HISTORY_WINDOW_S) -> list[dict[str, Any]]:
    """Utilisation samples of the last `window_s` seconds, plus one per reachable substation."""
    samples = [s for s in history if now - s["t"] <= window_s]
    samples += [{"t": now, "substation": row["substation"], "utilization": row["utilization"]}
                for row in rows if row["reachable"] or row["healthy"]]
    return samples


def utilization_spec(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Vega-Lite line chart of utilisation over time, one line per substation."""
    values = [{**s, "time": s["t"] * 1000} for s in history]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "height": 220,
        "mark": {"type": "line", "interpolate": "step-after", "point": False},
        "encoding": {
            "x": {"field": "time", "type": "temporal", "title": None,
                  "axis": {"format": "%H:%M:%S"}},
            "y": {"field": "utilization", "type": "quantitative", "title": "utilisation",
                  "axis": {"format": ".0%"}, "scale": {"domain": [0, 1]}},
            "color": {"field": "substation", "type": "nominal", "title": None},
        },
    }


def routing_rows(rows: list[dict[str, Any]], recent: list[Json]) -> list[dict[str, Any]]:
    """Per substation: total routed (balancer counter) and outcomes among recent decisions."""
    outcomes = Counter((d.get("substation"), d.get("outcome")) for d in recent)
    table = []
    for row in rows:
        name = row["substation"]
        table.append({"substation": name, "routed": row["routed_total"],
                      "recent admitted": outcomes.get((name, "admitted"), 0),
                      "recent refused": outcomes.get((name, "refused"), 0),
                      "recent errors": outcomes.get((name, "error"), 0)})
    return table


DECISION_COLUMNS = ("time", "vehicle_id", "substation", "outcome", "power_kw",
                    "utilization_after", "strategy", "reason", "decision_ms", "tried", "attempts",
                    "session_id")
_TIME_KEYS = ("time", "ts", "at", "timestamp", "decided_at")


def decided_at(decision: Json) -> float | None:
    for key in _TIME_KEYS:
        if key in decision:
            return to_epoch(decision[key])
    return None


def newest_first(recent: list[Json]) -> list[Json]:
    """Decisions newest first: by their time when they all have one, else as the balancer
    lists them (its journal is newest first)."""
    times = [decided_at(d) for d in recent]
    if recent and None not in times:
        order = sorted(range(len(recent)), key=lambda i: -times[i])  # stable: ties keep order
        return [recent[i] for i in order]
    return list(recent)


def decision_rows(recent: list[Json], limit: int = 50) -> list[dict[str, Any]]:
    """Newest-first routing decisions with the known columns first, in a fixed order."""
    rows = []
    for decision in newest_first(recent)[:limit]:
        row: dict[str, Any] = {}
        for key in _TIME_KEYS:
            if key in decision:
                row["time"] = format_time(decision[key])
                break
        for key in DECISION_COLUMNS[1:]:
            if key in decision:
                row[key] = _cell(decision[key])
        for key, value in decision.items():
            if key not in row and key not in _TIME_KEYS:
                row[key] = _cell(value)
        rows.append(row)
    return rows


def _cell(value: object) -> object:
    """Dataframe cells must be scalars: lists and dicts are shown as text."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def open_sessions(recent: list[Json], now: float, ended: set[str] | None = None) -> list[Json]:
    """Admitted sessions among the recent decisions that have not ended yet, newest first."""
    ended = ended or set()
    sessions = []
    for decision in newest_first(recent):
        session_id = decision.get("session_id")
        if not session_id or session_id in ended or decision.get("outcome", "admitted") \
                != "admitted":
            continue
        ends_at = to_epoch(decision.get("ends_at"))
        if ends_at is not None and ends_at <= now:
            continue
        sessions.append(decision)
    return sessions


def session_label(decision: Json) -> str:
    parts = [str(decision.get("session_id"))]
    if decision.get("vehicle_id"):
        parts.append(str(decision["vehicle_id"]))
    if decision.get("substation"):
        parts.append(f"at {decision['substation']}")
    return " · ".join(parts)


def burst_summary(results: list[Result]) -> list[dict[str, Any]]:
    """Where a burst of charge requests went: admitted per substation, refused, failed."""
    counts: Counter[str] = Counter()
    for result in results:
        if isinstance(result, ApiError):
            counts["no room (503)" if result.status == 503 else f"failed: {result.reason}"] += 1
        else:
            counts[str(result.get("substation"))] += 1
    return [{"outcome": name, "vehicles": n} for name, n in sorted(counts.items())]


def burst_text(results: list[Result]) -> str:
    admitted = sum(1 for r in results if not isinstance(r, ApiError))
    return (f"Burst of {len(results)} vehicles: {admitted} admitted, "
            f"{len(results) - admitted} not.")


def allocation_rows(direct: dict[str, Result]) -> list[dict[str, Any]]:
    """One row per charging session from each reachable substation's /status: what it asks
    for (power_kw, its maximum), its guaranteed minimum and what smart charging gives it."""
    rows = []
    for name, status in direct.items():
        if isinstance(status, ApiError):
            continue
        for sess in status.get("sessions") or []:
            asked, got = _num(sess.get("power_kw")), _num(sess.get("allocated_kw"))
            rows.append({"substation": name, "session_id": str(sess.get("session_id", "")),
                         "vehicle_id": str(sess.get("vehicle_id", "")),
                         "power_kw": asked, "min_power_kw": _num(sess.get("min_power_kw")),
                         "allocated_kw": got, "energy_kwh": _num(sess.get("energy_kwh")),
                         "share": round(got / asked, 4) if asked else 0.0})
    return rows


def allocation_spec(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Vega-Lite: per substation, one stacked bar segment per session's allocation (kW)."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": rows},
        "height": 40 + 45 * max(1, len({r["substation"] for r in rows})),
        "mark": {"type": "bar", "stroke": "white", "strokeWidth": 0.5},
        "encoding": {
            "y": {"field": "substation", "type": "nominal", "title": None},
            "x": {"field": "allocated_kw", "type": "quantitative", "stack": "zero",
                  "title": "allocated kW (one segment per car)"},
            "color": {"field": "share", "type": "quantitative", "title": "of asked",
                      "scale": {"domain": [0, 1], "range": ["#d62728", "#2ca02c"]},
                      "legend": {"format": ".0%"}},
            "tooltip": [{"field": "vehicle_id"}, {"field": "allocated_kw", "title": "gets kW"},
                        {"field": "power_kw", "title": "asks kW"},
                        {"field": "min_power_kw", "title": "min kW"},
                        {"field": "energy_kwh", "title": "kWh so far"}],
        },
    }


def queue_rows(balancer: Result) -> tuple[int, list[dict[str, Any]]]:
    """(cars waiting, the first of them in order) from the balancer's /status."""
    if isinstance(balancer, ApiError):
        return 0, []
    queue = balancer.get("queue") or {}
    waiting = [{"position": int(_num(w.get("position"))), "vehicle_id": w.get("vehicle_id"),
                "power_kw": w.get("power_kw"), "min_power_kw": w.get("min_power_kw"),
                "queued_at": format_time(w.get("queued_at")),
                "session_id": w.get("session_id")}
               for w in queue.get("waiting") or []]
    return int(_num(queue.get("length"))), waiting
