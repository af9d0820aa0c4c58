"""The panel's pure functions at real sizes: timeline windows and aggregates at 10 and 100,000
events, store pages from GET /kv or the /status fallback, Prometheus history rows, node state
and sync. Sizes, not speed, are checked here (timings belong to benchmarks)."""

from __future__ import annotations

import json
import random

import pytest

from panel import timeline as tl
from panel.api import ApiError
from panel.history import GRID_CHARTS, KV_CHARTS, history_spec, live_rows, matrix_rows, query_for
from panel.stores import Pager, store_page
from panel.views_kv import node_headline, node_state, sync_rows, timeline_rows, timeline_spec

T0 = 1_780_000_000_000  # ms


def make_events(n: int, nodes: int = 3, buffered_every: int = 97,
                per_s: float = 400.0) -> list[dict]:
    """`n` deliveries at one node, as /events returns them, some of them buffered."""
    rng = random.Random(n)
    return [{"seq": i + 1, "origin": i % nodes, "key": f"k{i % 5000}", "value": i,
             "version": [i, 0, 0], "kind": "local" if i % nodes == 0 else "replicated",
             "buffered_ms": rng.randint(5, 4000) if i % buffered_every == 5 else 0,
             "ts": T0 + int(i * 1000 / per_s)} for i in range(n)]


@pytest.mark.parametrize("n", [10, 100_000])
def test_window_keeps_only_the_latest_deliveries(n):
    events = make_events(n)
    window = tl.keep_window([], events[: n // 2], 1_000)
    window = tl.keep_window(window, events[n // 2 - 3:], 1_000)  # overlapping read: no dupes
    assert len(window) == min(n, 1_000)
    assert [e["seq"] for e in window] == list(range(max(1, n - 999), n + 1))


@pytest.mark.parametrize("n", [10, 100_000])
def test_aggregate_is_bounded_and_counts_every_delivery(n):
    by_node = {"node1": make_events(n), "node3": make_events(n)[::2]}
    rows, bucket_s = tl.rate_rows(by_node)
    # a few hundred rows whatever the size: buckets x series x nodes
    assert len(rows) <= tl.BUCKETS_MAX * (3 + 1) * 2 + 8
    span_s = (by_node["node1"][-1]["ts"] - T0) / 1000
    assert span_s / bucket_s <= tl.BUCKETS_MAX
    per_origin = sum(r["count"] for r in rows if r["node"] == "node1" and r["series"] != "buffered")
    assert per_origin == n
    buffered = sum(1 for e in by_node["node1"] if e["buffered_ms"] > 0)
    assert sum(r["count"] for r in rows if r["node"] == "node1" and r["series"] == "buffered") \
        == buffered
    spec = tl.rate_spec(rows, bucket_s)
    json.dumps(spec, allow_nan=False)
    colors = spec["spec"]["layer"][0]["encoding"]["color"]["scale"]
    assert colors["range"][colors["domain"].index("buffered")] == "#d62728"  # stands out
    dist = tl.buffered_rows(by_node)
    assert sum(r["deliveries"] for r in dist if r["node"] == "node1") == buffered
    assert all(r["waited"] in tl.BIN_ORDER for r in dist)
    assert tl.is_dense(by_node) == (n > tl.MARKS_MAX)


def test_ten_events_are_drawn_one_mark_each_with_buffered_ones_ringed():
    events = make_events(10, buffered_every=7)
    by_node = {"node1": events}
    assert not tl.is_dense(by_node)
    spec = timeline_spec(timeline_rows(by_node), last=100)
    assert len(spec["data"]["values"]) == 10
    ring = [layer for layer in spec["layer"] if layer.get("transform")]
    assert ring and ring[0]["mark"]["color"] == "#d62728"
    assert any(layer["mark"]["type"] == "text" for layer in spec["layer"])  # few: labelled
    caption = tl.window_caption(by_node, paging=False)
    assert caption.startswith("latest deliveries") and "#1–#10" in caption
    assert "1 buffered" in caption


def test_many_marks_lose_their_labels_but_keep_the_ring():
    rows = timeline_rows({"node1": make_events(400, buffered_every=7)})
    spec = timeline_spec(rows, last=400)
    assert len(spec["data"]["values"]) == 400
    assert not any(layer["mark"]["type"] == "text" for layer in spec["layer"])
    assert any(layer.get("transform") for layer in spec["layer"])


def test_latest_start_and_paging_back_through_since():
    assert tl.latest_start([40_000, 30_000, 30_000], 1_000) == 99_000
    assert tl.latest_start([3, 2, 0], 1_000) == 0
    assert tl.latest_start(None, 100) == 0
    assert tl.older_page(99_001, 1_000) == tl.Fetch(98_000, 1_000)
    assert tl.older_page(500, 1_000) == tl.Fetch(0, 499)
    assert tl.older_page(1, 1_000) is None
    assert tl.older_page(50_001, 10_000).limit == 10_000


def test_bucket_size_is_nice_and_bounded():
    assert tl.bucket_seconds(60) == 1
    assert tl.bucket_seconds(600) == 5
    assert tl.bucket_seconds(6 * 3600) == 120
    assert tl.bucket_seconds(30 * 24 * 3600) * tl.BUCKETS_MAX >= 30 * 24 * 3600


def test_events_without_timestamps_are_left_out_of_the_rate():
    events = [{"seq": 1, "origin": 0, "buffered_ms": 0}, {"seq": 2, "origin": 1, "ts": "x"}]
    assert tl.rate_rows({"node1": events}) == ([], 1)


# --- stores ---------------------------------------------------------------------------------

def test_store_page_from_the_key_listing():
    listing = {"items": [{"key": "a", "value": {"n": 1}, "version": [1, 0, 0],
                          "siblings": [{"value": 1}, {"value": 2}]}], "cursor": "17"}
    page = store_page(listing, {}, "", None, 50)
    assert page.rows == [{"key": "a", "value": '{"n":1}', "version": "[1, 0, 0]", "siblings": 2}]
    assert page.next_cursor == "17" and page.note is None
    assert store_page({"items": [], "cursor": None}, {}, "", None, 50).next_cursor is None


@pytest.mark.parametrize("n", [10, 100_000])
def test_store_fallback_pages_the_status_store_and_says_so(n):
    status = {"store": {f"user:{i:06d}": i for i in range(n)} | {"other": 1}}
    no_listing = ApiError("node1", "HTTP 404: not found", status=404)
    page = store_page(no_listing, status, "user:", None, 50)
    assert len(page.rows) == min(50, n)
    assert page.rows[0]["key"] == "user:000000"
    assert "no key listing" in page.note and "/status" in page.note
    if n > 50:
        second = store_page(no_listing, status, "user:", page.next_cursor, 50)
        assert second.rows[0]["key"] == "user:000050"
    else:
        assert page.next_cursor is None
    down = store_page(ApiError("node1", "connection refused"), status, "", None, 50)
    assert down.rows == [] and "connection refused" in down.note


def test_pager_goes_forward_and_back_and_resets_on_a_new_prefix():
    pager = Pager()
    pager.forward("10")
    pager.forward(None)  # the last page: nowhere further
    assert (pager.cursor, pager.page_number) == ("10", 2)
    pager.back()
    pager.back()
    assert (pager.cursor, pager.page_number) == (None, 1)
    pager.forward("5")
    pager.reset("user:")
    assert (pager.prefix, pager.cursor) == ("user:", None)


# --- node state and sync --------------------------------------------------------------------

def test_recovering_state_and_sync_rounds_per_peer():
    status = {"state": "recovering", "keys": 25_000, "buffered": 3, "buffer": [{}],
              "outbox": {"1": 2, "2": 5},
              "sync": {"2": {"rounds": 4, "repairs": 1}, "1": {"rounds": 5, "repairs": 0}}}
    assert node_state(status) == ("recovering", "warning")
    assert node_state({"state": "serving"}) == ("serving", "ok")
    assert node_state({}) == (None, "")
    head = node_headline(status)
    assert (head["keys"], head["buffered"], head["outbox"]) == ("25,000", "3", "7")
    assert sync_rows(status) == [{"peer": "node2", "rounds": 5, "repairs": 0},
                                 {"peer": "node3", "rounds": 4, "repairs": 1}]
    assert sync_rows({"sync": {"rounds": 3}}) == [{"peer": "all", "rounds": 3}]
    assert sync_rows({}) == []


# --- history ----------------------------------------------------------------------------------

def test_history_queries_have_a_rate_window_and_rows_drop_nan():
    for chart in (*GRID_CHARTS, *KV_CHARTS):
        query = query_for(chart, 90)
        assert "{w}" not in query
    assert "[360s]" in query_for(KV_CHARTS[0], 90) and "[60s]" in query_for(KV_CHARTS[0], 2)
    data = {"result": [{"metric": {"substation": "substation1"},
                        "values": [[1700000000, "0.5"], [1700000002, "NaN"]]},
                       {"metric": {}, "values": [[1700000000, "+Inf"], [1700000002, "3"]]}]}
    rows = matrix_rows(data, "substation")
    assert rows == [{"t": 1700000000000.0, "series": "substation1", "value": 0.5},
                    {"t": 1700000002000.0, "series": "total", "value": 3.0}]
    json.dumps(history_spec(rows, "Utilisation", "ratio"), allow_nan=False)
    samples = [{"t": 1700000000, "series": "node1", "buffered": 2, "outbox": 5}]
    assert live_rows(samples, ["buffered", "outbox"]) == [
        {"t": 1700000000000, "series": "node1 buffered", "value": 2.0},
        {"t": 1700000000000, "series": "node1 outbox", "value": 5.0}]
