"""KV node metrics: event counters per worker (multiprocess) and live gauges read from Redis."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

DELIVERIES = Counter("kv_deliveries_total", "Writes delivered to this node's store.",
                     ["origin", "kind"])
DUPLICATES = Counter("kv_duplicates_total",
                     "Replicated messages received again and acknowledged without applying.")
BUFFERED_SECONDS = Histogram(
    "kv_buffered_seconds", "Time a replicated message waited in the buffer before delivery.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
REPLICATION_LATENCY = Histogram(
    "kv_replication_latency_seconds", "Time from a local write to its acknowledgement by a peer.",
    ["peer"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REPLICATION_BATCHES = Counter("kv_replication_batches_total",
                              "Replication batches sent to a peer, by outcome.",
                              ["peer", "outcome"])
CONTEXT_WAITS = Counter("kv_context_waits_total",
                        "Requests whose causal context was ahead of the node's clock.", ["outcome"])


class NodeStateCollector(Collector):
    """Clock entries, buffer size and outbox depths, straight from Redis at scrape time."""

    def __init__(self, store):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            vc, buffered, depths, nkeys, serving = self.store.gauges()
        except redis.exceptions.RedisError:
            return
        clock = GaugeMetricFamily("kv_vector_clock", "This node's vector clock, per entry.",
                                  labels=["entry"])
        for i, value in enumerate(vc):
            clock.add_metric([str(i)], value)
        yield clock
        yield GaugeMetricFamily("kv_buffer_messages",
                                "Messages received but not yet causally deliverable.",
                                value=buffered)
        outbox = GaugeMetricFamily("kv_outbox_messages",
                                   "Messages queued for a peer and not yet acknowledged.",
                                   labels=["peer"])
        for peer, depth in depths.items():
            outbox.add_metric([str(peer)], depth)
        yield outbox
        yield GaugeMetricFamily("kv_keys", "Keys in this node's store.", value=nkeys)
        yield GaugeMetricFamily("kv_serving",
                                "1 when the node accepts writes, 0 while it is recovering.",
                                value=int(serving))
        limits = GaugeMetricFamily("kv_limit", "Configured bounds (OUTBOX_MAX, BUFFER_MAX, "
                                   "EVENT_LOG_MAX).", labels=["name"])
        cfg = self.store.cfg
        for name, value in (("outbox_max", cfg.outbox_max), ("buffer_max", cfg.buffer_max),
                            ("log_max", cfg.log_max)):
            limits.add_metric([name], value)
        yield limits

SYNC_EXCHANGES = Counter("kv_sync_exchanges_total",
                         "Anti-entropy exchanges this node pulled from a peer, by outcome.",
                         ["peer", "outcome"])
SYNC_REPAIRS = Counter("kv_sync_repaired_keys_total",
                       "Keys changed by anti-entropy exchanges with a peer.", ["peer"])
SYNC_BYTES = Counter("kv_sync_bytes_total", "Anti-entropy bytes exchanged with a peer.",
                     ["peer", "direction"])
