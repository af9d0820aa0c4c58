"""Reading one value from a service's /metrics (Prometheus text format)."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families


def metric_sum(base_url: str, name: str, labels: dict[str, str] | None = None,
               attempts: int = 3, log=print) -> float:
    """Sum of the samples called `name` whose labels include `labels`; nan if /metrics fails.

    A scrape can fail transiently (a 5xx while Gunicorn workers write their metric files), so it
    is retried a few times before the figure is given up as unknown.
    """
    for attempt in range(attempts):
        resp = requests.get(base_url + "/metrics", timeout=5)
        if resp.status_code == 200:
            return sum(sample.value for family in text_string_to_metric_families(resp.text)
                       for sample in family.samples if sample.name == name
                       and all(sample.labels.get(k) == v for k, v in (labels or {}).items()))
        log(f"  warning: {base_url}/metrics answered {resp.status_code} (try {attempt + 1}): "
            f"{resp.text[:120]}")
        time.sleep(0.2)
    return float("nan")
