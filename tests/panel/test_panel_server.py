"""The served panel answers /health and /metrics like every other GridClock service."""

from __future__ import annotations

import requests

from panel import metrics


def test_health_and_metrics_routes(panel_url) -> None:
    health = requests.get(f"{panel_url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "panel"}
    scrape = requests.get(f"{panel_url}/metrics", timeout=5)
    assert scrape.status_code == 200
    assert scrape.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE panel_api_calls_total counter" in scrape.text
    page = requests.get(panel_url, timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()  # the page is still there


def test_api_calls_are_counted_by_service_kind() -> None:
    before = metrics.REGISTRY.get_sample_value(
        "panel_api_calls_total", {"service": "node", "outcome": "2xx"}) or 0
    metrics.observe("node2", "2xx", 0.01)
    metrics.observe("node3", "2xx", 0.02)
    after = metrics.REGISTRY.get_sample_value(
        "panel_api_calls_total", {"service": "node", "outcome": "2xx"})
    assert after == before + 2
