"""Balancer metrics. Per-process counters/histograms go through prometheus_client's
multiprocess mode; routed counts and upstream health live in Redis (shared by every
worker, and shown by /status too) and are read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from balancer import keys
from grid.keys import QUEUE

DECISION_SECONDS = Histogram(
    "balancer_decision_seconds",
    "Whole routing decision of one POST /charge, upstream calls included.",
    ["strategy"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
             2.5),
)
RETRIES = Counter("balancer_retries_total", "Extra substations tried within one request.")
UNROUTABLE = Counter("balancer_unroutable_total", "503s to the client: no substation had room.")


class BalancerCollector(Collector):
    def __init__(self, client: redis.Redis, names: list[str]):
        self.client, self.names = client, names

    def collect(self) -> Iterator:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.HEALTH)
        pipe.hgetall(keys.ROUTED)
        pipe.llen(QUEUE)
        health, routed, queued = pipe.execute()
        yield GaugeMetricFamily("balancer_queue_length", "Cars waiting for room (all balancers).",
                                value=float(queued))
        healthy = GaugeMetricFamily("balancer_upstream_healthy",
                                    "1 when the balancer routes to the substation.",
                                    labels=["substation"])
        for name in self.names:
            healthy.add_metric([name], 1.0 if health.get(name, "1") == "1" else 0.0)
        yield healthy
        counted = CounterMetricFamily("balancer_routed", "Requests sent to a substation.",
                                      labels=["substation", "outcome"])
        for name in self.names:
            for outcome in ("admitted", "refused", "error"):
                counted.add_metric([name, outcome], float(routed.get(f"{name}|{outcome}", 0)))
        yield counted
