"""Prometheus exposition that is correct under several Gunicorn workers.

Counters and histograms go through prometheus_client's multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set (Gunicorn config sets it); gauges that describe
shared state are read live from Redis by a collector at scrape time, so every
worker reports the same number.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template, method and status code.",
    ["service", "route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time spent handling an HTTP request.",
    ["service", "route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class SafeMultiProcessCollector(MultiProcessCollector):
    """Skips metric files that are still empty: a worker creates its file and sizes it in two
    steps, and a scrape in between (or a worker killed in between) would otherwise fail every
    scrape with struct.error (prometheus/client_python#1199). A file that vanishes between
    listing and reading (mark_process_dead) is skipped too."""

    def collect(self):
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= 8:  # the header holds the used-bytes counter
                    files.append(path)
            except OSError:
                continue
        return self.merge(files, accumulate=True)


def build_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A fresh registry per scrape: all workers' files plus live collectors."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        SafeMultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        for collector in list(REGISTRY._collector_to_names):  # single-process fallback
            registry.register(collector)
    for collector in extra:
        registry.register(collector)
    return registry


def install_metrics(app: Flask, service: str, extra: Iterable[Collector] = ()) -> None:
    """Count and time every request, and serve GET /metrics."""
    collectors = list(extra)

    @app.before_request
    def _start_timer():
        g._t0 = time.perf_counter()

    @app.after_request
    def _observe(resp):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if route != "/metrics":
            HTTP_REQUESTS.labels(service, route, request.method, str(resp.status_code)).inc()
            started = g.get("_t0")
            if started is not None:
                HTTP_DURATION.labels(service, route, request.method).observe(
                    time.perf_counter() - started
                )
        return resp

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(build_registry(collectors)), mimetype=CONTENT_TYPE_LATEST)
