"""The polled view used by `polled` and `p2c`: each worker scrapes every substation's
/metrics every POLL_INTERVAL_S in a background thread."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from balancer.upstream import Upstream
from common.background import BackgroundLoop

log = logging.getLogger(__name__)


def parse_utilization(text: str) -> float | None:
    """substation_load_watts / substation_capacity_watts from a /metrics page, or None."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("substation_load_watts", "substation_capacity_watts"):
            for sample in family.samples:
                values[family.name] = sample.value
    load, cap = values.get("substation_load_watts"), values.get("substation_capacity_watts")
    if load is None or not cap:
        return None
    return load / cap


class Poller(BackgroundLoop):
    thread_name = "metrics-poller"

    def __init__(self, upstream: Upstream, interval_s: float, timeout_s: float = 1.0):
        self.upstream, self.interval_s, self.timeout_s = upstream, interval_s, timeout_s
        self._utils: dict[str, float] = {}
        self._polled_at: float | None = None
        self._lock = threading.Lock()
        super().__init__()

    def snapshot(self) -> tuple[dict[str, float], float | None]:
        with self._lock:
            age = None if self._polled_at is None else time.monotonic() - self._polled_at
            return dict(self._utils), age

    def poll_once(self) -> None:
        fresh: dict[str, float] = {}
        for name in self.upstream.urls:
            try:
                resp = self.upstream.get(name, "/metrics", self.timeout_s)
                util = parse_utilization(resp.text) if resp.status == 200 else None
            except Exception as exc:  # noqa: BLE001 - a bad scrape keeps the last value
                log.debug("poll of %s failed: %s", name, exc)
                util = None
            if util is not None:
                fresh[name] = util
        with self._lock:
            self._utils.update(fresh)
            self._polled_at = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval_s)
