"""The multiprocess collector survives a metrics file caught half-created."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from common.metrics import SafeMultiProcessCollector


def test_empty_metrics_file_does_not_break_the_scrape(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # A counter written the way a worker writes it, then a file caught between create and size.
    from prometheus_client import values

    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 4242))
    Counter("demo_total", "a counter", registry=None).inc(3)
    (tmp_path / "counter_123.db").write_bytes(b"")
    registry = CollectorRegistry()
    SafeMultiProcessCollector(registry)
    assert b"demo_total 3.0" in generate_latest(registry)
