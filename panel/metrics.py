"""The panel's own metrics: its calls to the stack's APIs, by service and outcome.

Streamlit runs every session in one process, so a plain registry is correct here. It is a
private one (not prometheus_client's global) so a module reload by Streamlit's file watcher
starts fresh counters instead of failing on duplicate names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
API_CALLS = Counter("panel_api_calls_total", "Calls the panel made to a service's API.",
                    ["service", "outcome"], registry=REGISTRY)
API_SECONDS = Histogram("panel_api_call_duration_seconds",
                        "Time the panel waited for a service's API.", ["service"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                        registry=REGISTRY)


def observe(service: str, outcome: str, seconds: float) -> None:
    # Label by kind (node, substation, balancer), not by instance: node1..3 share a series
    # family and Prometheus's `instance` already says which panel.
    kind = service.rstrip("0123456789") or service
    API_CALLS.labels(kind, outcome).inc()
    API_SECONDS.labels(kind).observe(seconds)
