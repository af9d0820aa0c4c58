"""`make bench` pieces that can be checked without timing anything: the arithmetic, the burst,
the report, and the load generator + minimal app against a real Gunicorn and redis-server."""

from __future__ import annotations

import json
import math

import pytest
import requests

from bench import grid
from bench.__main__ import markdown, table
from bench.loadgen import Target, run_count
from bench.plot import render
from bench.stats import median_ratio, percentile, spread


def test_percentile_interpolates():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 100
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input


def test_median_ratio_and_spread():
    assert median_ratio([50, 60, 90], [100, 100, 100]) == pytest.approx(0.6)
    assert median_ratio([10, 20], [20, 20]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        median_ratio([1, 2], [1])
    assert spread([0.2, 0.9, 0.5]) == pytest.approx(0.7)
    assert math.isnan(spread([]))


def test_target_templates():
    target = Target("http://127.0.0.1:1", "PUT", "/kv/k-{w}-{n}", '{{"value": {{"n": {n}}}}}')
    path, body = target.render(3, 17)
    assert path == "/kv/k-3-17"
    assert json.loads(body) == {"value": {"n": 17}}
    path, body = Target("http://x", path="/status").render(0, 0)
    assert (path, body) == ("/status", None)
    assert json.loads(grid.TINY_CHARGE.format(w=1, n=2))["vehicle_id"] == "bench-1-2"


def test_burst_plan_is_fixed_and_overloads():
    wave1, wave2 = grid.burst_plan(300)
    assert (wave1, wave2) == grid.burst_plan(300)  # the same burst for every strategy
    assert sum(wave1) <= grid.WAVE1_DEMAND * 300
    total = sum(wave1) + sum(wave2)
    assert grid.BURST_DEMAND * 300 <= total < grid.BURST_DEMAND * 300 + grid.BURST_POWER_KW
    assert wave1 and wave2 and set(wave1 + wave2) == {grid.BURST_POWER_KW}


def _fake_results() -> dict:
    side = {"throughput_per_s": [100.0, 120.0], "errors": 0, "p50_ms": 5.0, "p90_ms": 9.0,
            "p99_ms": 20.0}
    strategy = {"spread_after_wave1": 0.1, "refused": 2, "refused_while_capacity_remained": 0,
                "upstream_retries": 1.0, "errors": 0, "requests": 30,
                "utilization_after_wave1": {"substation1": 0.6, "substation2": 0.55,
                                            "substation3": 0.5}}
    vis = {"samples": 10, "failed": 0, "p50_ms": 3.0, "p99_ms": 8.0, "max_ms": 9.0}
    return {
        "started_at": "2026-01-01 00:00:00",
        "machine": {"cpus": 2, "platform": "Linux", "python": "3.11", "note": "shared",
                    "loadavg_at_start": [0.5, 0, 0], "loadavg_at_end": [1.5, 0, 0]},
        "settings": {"quick": True},
        "duration_s": 60,
        "kv": {"throughput": {"node": side, "baseline": side, "ratio": 0.7},
               "visibility": {"light": vis, "half_load": vis},
               "drain": {"queued": 100, "drain_s": 0.5, "rate_per_s": 200.0}},
        "grid": {"throughput": {"balancer": side, "direct": side, "ratio": 0.8},
                 "latency": {"added_p50_ms": 0.9, "added_p99_ms": 3.0},
                 "strategies": {name: strategy for name in grid.STRATEGIES}},
    }


def test_table_and_plot(tmp_path):
    rows = table(_fake_results())
    figures = {row[0]: row[1] for row in rows}
    assert figures["KV PUT throughput ratio node1 / minimal app"] == "0.70"
    assert figures["Balancer added latency p50 / p99 ms"] == "0.90 / 3.00"
    targets = {row[0]: row[2] for row in rows}
    assert targets["Balancer added latency p50 / p99 ms"] == "p50 < 2 (met)"
    slow = _fake_results()
    slow["kv"]["visibility"]["light"] = {**slow["kv"]["visibility"]["light"], "p99_ms": 80.0}
    assert {row[0]: row[2] for row in table(slow)}[
        "KV visible on every node, light load p50 / p99 ms"] == "p99 <= 50 (MISSED)"
    assert sum(1 for row in rows if row[0].startswith("Strategy ")) == len(grid.STRATEGIES)
    md = markdown(_fake_results())
    assert "| KV PUT throughput ratio node1 / minimal app | 0.70 | >= 0.85 (MISSED) |" in md
    assert "2 CPUs" in md and "load average 0.5 at start" in md
    png = render(_fake_results(), tmp_path / "bench.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loadgen_and_minimal_app(redis_server, service_factory):
    app = service_factory("minimal", "bench.minimal_app:create_app()",
                          {"REDIS_URL": redis_server.url})
    bad = requests.put(app.url + "/kv/x", data="not json", timeout=5)
    assert bad.status_code == 400 and "error" in bad.json()
    assert requests.put(app.url + "/kv/x", json={}, timeout=5).status_code == 400

    target = Target(app.url, "PUT", "/kv/lg-{w}-{n}", '{{"value": {n}}}')
    result = run_count(target, 50, concurrency=4, processes=2)
    assert result.errors == 0
    assert result.ok == 52  # rounded up to a multiple of the concurrency
    assert len(result.latencies_ms) == 52 and result.throughput > 0
    client = redis_server.client()
    assert len(client.keys("lg-*")) == 52
    assert json.loads(client.get("lg-3-12")) == 12
