"""Substation gauges and counters, read live from Redis at scrape time.

The counters live in Redis (the Lua scripts bump them, and the balancer's reaping counts
expiries too), so every worker, and a restarted process, reports the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from grid.sessions import SessionStore


class SubstationCollector(Collector):
    def __init__(self, store: SessionStore):
        self.store = store

    def collect(self) -> Iterator:
        snap = self.store.snapshot()
        name = [self.store.name]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(metric, doc, labels=["substation"])
            family.add_metric(name, value)
            return family

        yield gauge("substation_load_watts", "Sum of active sessions' allocated power.",
                    snap.load_w)
        yield gauge("substation_requested_watts", "Sum of active sessions' maximum power.",
                    snap.max_sum_w)
        yield gauge("substation_minimum_watts", "Sum of active sessions' minimum power "
                    "(admission needs it to fit in the capacity).", snap.min_sum_w)
        yield gauge("substation_capacity_watts", "Configured capacity.", snap.capacity_w)
        yield gauge("substation_utilization_ratio", "Load / capacity.",
                    snap.load_w / snap.capacity_w if snap.capacity_w else 0.0)
        yield gauge("substation_active_sessions", "Sessions charging now.", snap.active)
        admissions = CounterMetricFamily("substation_admissions", "Charge requests by outcome.",
                                         labels=["substation", "outcome"])
        for outcome in ("admitted", "refused", "late"):  # late: past the caller's deadline
            admissions.add_metric([*name, outcome], snap.counters[outcome])
        yield admissions
        ended = CounterMetricFamily("substation_sessions_ended", "Sessions ended, by reason.",
                                    labels=["substation", "reason"])
        for reason in ("expired", "charged", "deleted", "abandoned"):
            ended.add_metric([*name, reason], snap.counters[reason])
        yield ended
        energy = CounterMetricFamily("substation_energy_delivered_joules",
                                     "Energy delivered to cars, charging and ended sessions.",
                                     labels=["substation"])
        energy.add_metric(name, snap.energy_wms / 1000)  # W*ms -> J
        yield energy
