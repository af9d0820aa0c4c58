"""The N-scaling part of `make bench` (bench/nscale.py) without timing anything: its arithmetic
and report, and its counting of replication messages and bytes on a real 3-node cluster."""

from __future__ import annotations

import json

import pytest

from bench import nscale
from bench.settings import BenchSettings


def _row(n: int, messages: float, wire_bytes: float, clock: int, cpu: float) -> dict:
    return {"n": n, "throughput_per_s": [100.0, 120.0], "throughput_ratio_to_first": 1.0,
            "messages_per_write": messages, "batches_per_write": 0.1,
            "visibility": {"p50_ms": 10.0, "p99_ms": 20.0},
            "wire": {"bytes_per_write": wire_bytes, "clock_bytes": clock},
            "cpu_s_per_1000_writes": {"writer_node": 2.0, "writer_redis": 0.3,
                                      "other_node_mean": 0.1, "other_redis_mean": 0.05,
                                      "cluster_total": cpu}}


def test_growth_is_the_least_squares_slope_per_node():
    rows = [_row(3, 2, 150, 14, 3.0), _row(5, 4, 330, 22, 3.5), _row(7, 6, 546, 30, 4.0)]
    growth = nscale.growth(rows)
    assert growth["messages_per_write_per_node"] == pytest.approx(1.0)
    assert growth["clock_bytes_per_node"] == pytest.approx(4.0)
    assert growth["bytes_per_write_per_node"] == pytest.approx(99.0)
    assert growth["cluster_cpu_ms_per_write_per_node"] == pytest.approx(0.25)


def test_table_rows_and_plot(tmp_path):
    result = {"workers_per_node": 1, "rows": [_row(3, 2, 150, 14, 3.0), _row(5, 4, 330, 22, 3.5)]}
    rows = nscale.table_rows(result)
    figures = {row[0]: row[1] for row in rows}
    assert figures["N=3/5: replication messages per write"] == "2.00 / 4.00"
    assert {row[0]: row[2] for row in rows}[
        "N=3/5: replication messages per write"] == "= N - 1 (met)"
    result["rows"][1]["messages_per_write"] = 5.0  # a message sent twice
    assert {row[0]: row[2] for row in nscale.table_rows(result)}[
        "N=3/5: replication messages per write"] == "= N - 1 (MISSED)"
    assert figures["N=3/5: PUT/s at node1 (median of rounds)"] == "110 / 110"
    png = nscale.plot(result, tmp_path / "nscale.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_real_cluster_counts_n_minus_1_messages_of_an_n_entry_clock_per_write(tmp_path):
    cluster = nscale.Cluster(tmp_path, 3).start()
    try:
        wire = nscale.wire_bytes(cluster, 30, BenchSettings.from_env())
        assert wire["writes"] >= 30
        assert wire["messages"] == 2 * wire["writes"]  # one per peer, held behind paused links
        assert wire["clock_entries"] == 3
        message = json.dumps({"vc": [1, 0, 0]}, separators=(",", ":"))
        assert wire["bytes_per_message"] > len(message)
        cluster.wait_replicated()  # released links deliver everything: every clock equal
        cpu = cluster.cpu_seconds()
        assert set(cpu) == {*(f"node{i}" for i in (1, 2, 3)),
                            *(f"redis-node{i}" for i in (1, 2, 3))}
        assert cpu["node1"] > 0
    finally:
        cluster.stop()
    assert not any(proc.running for proc in cluster.procs.values())
