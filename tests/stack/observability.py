"""Shared by the observability tests: the dashboards' queries and the metric names of the brief."""

from __future__ import annotations

import json
import re

from common.settings import REPO_ROOT

DASHBOARDS = sorted((REPO_ROOT / "grafana" / "dashboards").glob("*.json"))

# Every metric the services export (the team's contract), without histogram suffixes.
CONTRACT_METRICS = {
    "up", "http_requests_total", "http_request_duration_seconds",
    "kv_vector_clock", "kv_buffer_messages", "kv_outbox_messages", "kv_deliveries_total",
    "kv_buffered_seconds", "kv_replication_latency_seconds", "kv_replication_batches_total",
    "kv_duplicates_total",
    "substation_load_watts", "substation_capacity_watts", "substation_utilization_ratio",
    "substation_active_sessions", "substation_admissions_total",
    "substation_sessions_ended_total", "substation_requested_watts", "substation_minimum_watts",
    "substation_energy_delivered_joules_total", "balancer_queue_length",
    "balancer_routed_total", "balancer_decision_seconds", "balancer_upstream_healthy",
    "balancer_retries_total", "balancer_unroutable_total",
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) for every target of every panel."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target["expr"]))
    return out


def concrete(expr: str) -> str:
    """The expression Grafana would send, with its interval variables filled in."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (label names and functions left out)."""
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    without_by = re.sub(r"\b(by|without)\s*\([^)]*\)", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_by))
    functions = {"sum", "rate", "histogram_quantile", "increase", "deriv", "and", "or", "max",
                 "min", "avg", "count", "irate", "delta", "vector", "m", "s", "offset"}
    return {re.sub(r"_(bucket|sum|count)$", "", w) for w in words - functions}
