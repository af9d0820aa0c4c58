"""Pure rendering logic of the panel: API JSON in, rows / chart specs / sentences out."""

from __future__ import annotations

import json

import pytest

from common.settings import ConfigError, parse_substations
from panel.api import ApiError
from panel.config import load_config
from panel.render import (
    format_clock,
    format_ms,
    format_time,
    format_value,
    health_text,
    node_index,
    node_label,
    to_epoch,
)
from panel.views_grid import (
    append_history,
    burst_summary,
    burst_text,
    decision_rows,
    load_spec,
    open_sessions,
    routing_rows,
    substation_rows,
    utilization_spec,
)
from panel.views_kv import (
    buffer_rows,
    carry_context,
    kv_result_text,
    link_rows,
    merge_events,
    node_headline,
    peer_rows,
    store_rows,
    timeline_caption,
    timeline_rows,
    timeline_spec,
    waiting_for,
)
from stack.services import default_settings

# node3 (NODE_ID 2) while y from node2 waits for node1's x: the seed scenario's key moment
NODE3 = {
    "node": 2,
    "vector_clock": [0, 0, 0],
    "store": {"b": 2, "a": {"n": 1}},
    "buffer": [{"origin": 1, "vc": [1, 1, 0], "key": "y", "value": "B", "waited_ms": 1250}],
    "outbox": {"0": 0, "1": 3},
    "links": {"0": {"delay_ms": 0, "paused": False},
              "1": {"delay_ms": 3000, "paused": True, "consecutive_failures": 2}},
}


# --- formatting -----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "label", "index"), [
    (0, "node1", 0), (2, "node3", 2), ("1", "node2", 1), ("node3", "node3", 2),
    ("balancer", "balancer", None)])
def test_node_names_map_node_id_to_service_names(raw, label, index):
    assert node_label(raw) == label
    assert node_index(raw) == index


def test_values_clocks_and_durations_read_naturally():
    assert format_clock([1, 0, 2]) == "[1, 0, 2]"
    assert format_clock(None) == "—"
    assert format_value("A") == "A"
    assert format_value({"a": [1, 2]}) == '{"a":[1,2]}'
    assert format_value("x" * 100, limit=10) == "x" * 9 + "…"
    assert format_ms(850) == "850 ms"
    assert format_ms(3200) == "3.2 s"
    assert format_ms(None) == "—"


def test_times_from_epoch_seconds_ms_and_iso_agree():
    epoch = 1_700_000_000
    assert format_time(epoch) == format_time(epoch * 1000)
    assert format_time("2023-11-14T22:13:20Z") == format_time(epoch)
    assert format_time("not a time") == "not a time"


def test_health_text_gives_the_reason_when_down():
    assert health_text({"status": "ok"}) == (True, "ok")
    assert health_text(ApiError("node2", "connection refused")) == (False, "connection refused")


def test_api_error_says_down_for_unreachable_and_5xx_but_error_for_4xx():
    assert str(ApiError("node2", "connection refused")) == "node2 down: connection refused"
    assert str(ApiError("balancer", "HTTP 503: redis unavailable", 503)).startswith(
        "balancer down")
    assert str(ApiError("node1", "HTTP 400: key must not be empty", 400)) == \
        "node1 error: HTTP 400: key must not be empty"


# --- configuration --------------------------------------------------------------------------

def test_config_reads_the_stack_environment(monkeypatch):
    monkeypatch.setenv("NODE_URLS", "http://a:1/, http://b:2")
    monkeypatch.setenv("BALANCER_URL", "http://bal:8080/")
    monkeypatch.setenv("SUBSTATIONS", "s1=http://s:1,s2=http://s:2/")
    monkeypatch.setenv("ADMIN_TOKEN", "secret")
    monkeypatch.setenv("PANEL_REFRESH_S", "2")
    cfg = load_config()
    assert cfg.node_urls == ["http://a:1", "http://b:2"]
    assert cfg.node_names == ["node1", "node2"]
    assert cfg.balancer_url == "http://bal:8080"
    assert cfg.substations == [("s1", "http://s:1"), ("s2", "http://s:2")]
    assert (cfg.admin_token, cfg.refresh_s) == ("secret", 2.0)


@pytest.mark.parametrize("bad", ["s1", "=http://x", "s1=", "s 1=http://x", "s1=ftp://x",
                                 "s1=http://", "x" * 49 + "=http://x"])
def test_malformed_substations_setting_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="name=http://host:port"):
        parse_substations([bad])


def test_without_settings_the_panel_uses_the_stack_defaults(monkeypatch):
    for key in ("NODE_URLS", "BALANCER_URL", "SUBSTATIONS", "PROMETHEUS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("panel.config.load_dotenv", lambda: None)
    cfg, defaults = load_config(), default_settings()
    assert cfg.node_urls == defaults["NODE_URLS"].split(",")
    assert cfg.node_urls[0] == "http://127.0.0.1:5001"
    assert cfg.balancer_url == defaults["BALANCER_URL"] == "http://127.0.0.1:8080"
    assert ",".join(f"{n}={u}" for n, u in cfg.substations) == defaults["SUBSTATIONS"]
    assert cfg.prometheus_url == "http://127.0.0.1:9090"
    monkeypatch.setenv("PROMETHEUS_URL", "off")
    assert load_config().prometheus_url is None


def test_refresh_below_half_a_second_is_refused(monkeypatch):
    monkeypatch.setenv("PANEL_REFRESH_S", "0.1")
    with pytest.raises(ConfigError, match="PANEL_REFRESH_S"):
        load_config()


# --- KV view --------------------------------------------------------------------------------

def test_store_rows_are_sorted_and_limited():
    assert store_rows(NODE3) == [{"key": "a", "value": '{"n":1}'}, {"key": "b", "value": "2"}]
    assert len(store_rows({"store": {str(i): i for i in range(50)}}, limit=10)) == 10


def test_buffer_row_says_who_sent_it_and_what_it_waits_for():
    [row] = buffer_rows(NODE3)
    assert row == {"from": "node2", "key": "y", "value": "B", "clock": "[1, 1, 0]",
                   "waited": "1.2 s", "waiting for": "1 write from node1"}


def test_waiting_for_prefers_the_nodes_own_explanation():
    message = {"origin": 1, "vc": [3, 1, 0], "waiting_for": {"0": 2}}
    assert waiting_for(message, [1, 0, 0]) == "2 writes from node1"
    gap = {"origin": 0, "vc": [3, 0, 0]}  # node1's write 3 while node1's write 2 is missing
    assert waiting_for(gap, [1, 0, 0]) == "1 write from node1"
    assert waiting_for({"origin": 0, "vc": [1, 0, 0]}, [0, 0, 0]) == "deliverable now"
    assert waiting_for({"origin": 0, "vc": [1, 0]}, [0, 0, 0]) == "?"


def test_peer_rows_show_outbox_and_link_per_peer_in_node_order():
    assert peer_rows(NODE3) == [
        {"peer": "node1", "outbox": 0, "delay": "0 ms", "paused": False, "failures": 0},
        {"peer": "node2", "outbox": 3, "delay": "3.0 s", "paused": True, "failures": 2},
    ]


def test_link_rows_list_only_injected_faults_and_skip_down_nodes():
    statuses = {"node3": NODE3, "node1": ApiError("node1", "connection refused")}
    assert link_rows(statuses) == [
        {"link": "node3 → node2", "delay": "3.0 s", "paused": True, "outbox": 3}]


def test_node_headline_counts():
    assert node_headline(NODE3) == {"clock": "[0, 0, 0]", "keys": "2", "buffered": "1",
                                    "outbox": "3"}


def test_context_merges_every_clock_observed():
    assert carry_context(None, {"vector_clock": [1, 0, 0]}) == [1, 0, 0]
    assert carry_context([1, 0, 0], {"vector_clock": [0, 2, 0]}) == [1, 2, 0]
    not_found = ApiError("node2", "HTTP 404: no such key", 404,
                         {"error": "no such key", "vector_clock": [0, 0, 3]})
    assert carry_context([1, 0, 0], not_found) == [1, 0, 3]
    assert carry_context([1, 0, 0], ApiError("node2", "connection refused")) == [1, 0, 0]
    assert carry_context([1, 0], {"vector_clock": [0, 0, 1]}) == [0, 0, 1]


def test_kv_result_text_narrates_clocks_conflicts_and_errors():
    ok = {"value": "A", "version": [1, 0, 0], "vector_clock": [1, 2, 0],
          "siblings": [{"value": "A"}, {"value": "Z"}]}
    text = kv_result_text("GET", "node2", "x", ok)
    assert "x = A" in text and "[1, 0, 0]" in text and "[1, 2, 0]" in text
    assert "2 concurrent siblings" in text
    missing = ApiError("node2", "HTTP 404", 404, {"vector_clock": [0, 0, 0]})
    assert kv_result_text("GET", "node2", "x", missing) == \
        "GET x at node2: not found (node clock [0, 0, 0])"
    late = ApiError("node3", "HTTP 503: not yet seen", 503)
    assert "not caught up" in kv_result_text("GET", "node3", "x", late)
    assert "failed: connection refused" in kv_result_text(
        "PUT", "node1", "x", ApiError("node1", "connection refused"))


def test_merge_events_appends_without_duplicates_and_keeps_the_tail():
    cached = [{"seq": 1}, {"seq": 2}]
    merged = merge_events(cached, [{"seq": 2}, {"seq": 3}, {"seq": 4}], keep=3)
    assert [e["seq"] for e in merged] == [2, 3, 4]


TIMELINE = {
    "node3": [
        {"seq": 7, "origin": 0, "key": "x", "value": "A", "version": [1, 0, 0],
         "kind": "replicated", "buffered_ms": 0},
        {"seq": 8, "origin": 1, "key": "y", "value": "B", "version": [1, 1, 0],
         "kind": "replicated", "buffered_ms": 2890},
    ],
    "node1": [{"seq": 1, "origin": 0, "key": "x", "value": "A", "version": [1, 0, 0],
               "kind": "local", "buffered_ms": 0}],
}


def test_timeline_rows_keep_delivery_order_and_mark_buffered_deliveries():
    rows = timeline_rows(TIMELINE)
    node3 = [r for r in rows if r["node"] == "node3"]
    assert [(r["key"], r["origin"], r["delivery"]) for r in node3] == [
        ("x", "node1", "replicated"), ("y", "node2", "replicated after buffering")]
    assert [r["order"] for r in node3] == [0, 1]
    assert [r["delivery"] for r in rows if r["node"] == "node1"] == ["local write"]


def test_timeline_spec_is_valid_json_with_a_ring_layer_for_buffered_points():
    spec = timeline_spec(timeline_rows(TIMELINE))
    json.dumps(spec)  # st.vega_lite_chart gets exactly this
    assert spec["encoding"]["x"]["field"] == "order"
    ring = [layer for layer in spec["layer"] if "transform" in layer]
    assert ring[0]["transform"] == [{"filter": "datum.buffered_ms > 0"}]
    assert {v["node"] for v in spec["data"]["values"]} == {"node1", "node3"}
    assert min(v["order"] for v in spec["data"]["values"]) == 1


def test_timeline_spec_shows_only_the_last_deliveries_per_node():
    many = {"node1": [{"seq": i, "origin": 0, "key": f"k{i}", "kind": "local"}
                      for i in range(1, 101)]}
    values = timeline_spec(timeline_rows(many), last=10)["data"]["values"]
    assert [v["key"] for v in values] == [f"k{i}" for i in range(91, 101)]
    assert [v["order"] for v in values] == list(range(1, 11))


def test_timeline_caption_points_at_the_latest_buffered_delivery():
    assert timeline_caption([]) == "No deliveries yet."
    caption = timeline_caption(timeline_rows(TIMELINE))
    assert "3 deliveries" in caption and "y from node2 at node3, held 2.9 s" in caption


# --- grid view ------------------------------------------------------------------------------

BALANCER = {
    "strategy": "least-utilization",
    "substations": [
        {"name": "substation1", "healthy": True, "load_kw": 74.0, "capacity_kw": 150.0,
         "utilization": 0.4933, "active_sessions": 10, "routed_total": 12},
        {"name": "substation2", "healthy": False, "load_kw": 0, "capacity_kw": 100.0,
         "utilization": 0, "active_sessions": 0, "routed_total": 3},
    ],
    "recent": [
        {"ts": 1_700_000_000, "vehicle_id": "EV-1", "substation": "substation1",
         "outcome": "admitted", "session_id": "s-1", "tried": ["substation1"]},
        {"ts": 1_700_000_001, "vehicle_id": "EV-2", "substation": "substation2",
         "outcome": "refused", "session_id": None},
        {"ts": 1_700_000_002, "vehicle_id": "EV-3", "substation": "substation1",
         "outcome": "admitted", "session_id": "s-3", "ends_at": 1_700_000_100},
    ],
}


def test_substation_rows_prefer_the_substations_own_answer():
    direct = {"substation1": {"load_kw": 81.4, "capacity_kw": 150, "utilization": 0.5427,
                              "active_sessions": 11},
              "substation2": ApiError("substation2", "connection refused")}
    rows = substation_rows(BALANCER, direct)
    assert rows[0] == {"substation": "substation1", "load_kw": 81.4, "capacity_kw": 150.0,
                       "utilization": 0.5427, "active_sessions": 11, "routed_total": 12,
                       "healthy": True, "reachable": True, "problem": ""}
    assert rows[1]["reachable"] is False and rows[1]["problem"] == "connection refused"
    assert rows[1]["healthy"] is False and rows[1]["capacity_kw"] == 100.0


def test_substation_rows_work_without_the_balancer():
    rows = substation_rows(ApiError("balancer", "connection refused"),
                           {"s1": {"load_kw": 10, "capacity_kw": 40}})
    assert rows == [{"substation": "s1", "load_kw": 10.0, "capacity_kw": 40.0,
                     "utilization": 0.25, "active_sessions": 0, "routed_total": 0,
                     "healthy": None, "reachable": True, "problem": ""}]


def test_load_spec_draws_capacity_behind_load():
    rows = substation_rows(BALANCER, {})
    spec = load_spec(rows)
    json.dumps(spec)
    assert [layer["encoding"]["x"]["field"] for layer in spec["layer"][:2]] == [
        "capacity_kw", "load_kw"]
    assert spec["data"]["values"][0]["percent"] == "49%"
    assert spec["data"]["values"][0]["headroom"] == "76.0 kW free"


def test_history_keeps_only_the_window_and_skips_unreachable_substations():
    rows = substation_rows(BALANCER, {"substation2": ApiError("substation2", "down")})
    history = append_history([{"t": 0.0, "substation": "old", "utilization": 1.0}], rows,
                             now=1000.0, window_s=300)
    assert [(s["substation"], s["t"]) for s in history] == [("substation1", 1000.0)]
    spec = utilization_spec(history)
    assert spec["data"]["values"][0]["time"] == 1_000_000.0
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 1]


def test_routing_rows_count_recent_outcomes_per_substation():
    table = routing_rows(substation_rows(BALANCER, {}), BALANCER["recent"])
    assert table[0] == {"substation": "substation1", "routed": 12, "recent admitted": 2,
                        "recent refused": 0, "recent errors": 0}
    assert table[1]["recent refused"] == 1


def test_decision_rows_are_newest_first_with_scalar_cells():
    rows = decision_rows(BALANCER["recent"])
    assert [r["vehicle_id"] for r in rows] == ["EV-3", "EV-2", "EV-1"]
    assert list(rows[2])[:4] == ["time", "vehicle_id", "substation", "outcome"]
    assert rows[2]["tried"] == "substation1"
    assert rows[0]["time"] == format_time(1_700_000_002)


def test_open_sessions_skip_refused_ended_and_expired():
    sessions = open_sessions(BALANCER["recent"], now=1_700_000_050)
    assert [s["session_id"] for s in sessions] == ["s-3", "s-1"]
    assert [s["session_id"] for s in open_sessions(BALANCER["recent"], 1_700_000_200)] == ["s-1"]
    assert open_sessions(BALANCER["recent"], 1_700_000_050, ended={"s-1", "s-3"}) == []


def test_burst_summary_counts_where_vehicles_went():
    results = [{"substation": "substation1"}, {"substation": "substation1"},
               {"substation": "substation3"}, ApiError("balancer", "HTTP 503: full", 503),
               ApiError("balancer", "connection refused")]
    assert burst_summary(results) == [
        {"outcome": "failed: connection refused", "vehicles": 1},
        {"outcome": "no room (503)", "vehicles": 1},
        {"outcome": "substation1", "vehicles": 2},
        {"outcome": "substation3", "vehicles": 1},
    ]
    assert burst_text(results) == "Burst of 5 vehicles: 3 admitted, 2 not."


def test_decisions_sort_by_iso_time_newest_first_whatever_the_input_order():
    journal = [{"time": "2026-01-01T10:00:02Z", "vehicle_id": "EV-b"},
               {"time": "2026-01-01T10:00:03Z", "vehicle_id": "EV-c"},
               {"time": "2026-01-01T10:00:01Z", "vehicle_id": "EV-a"}]
    assert [r["vehicle_id"] for r in decision_rows(journal)] == ["EV-c", "EV-b", "EV-a"]
    untimed = [{"vehicle_id": "EV-2"}, {"vehicle_id": "EV-1"}]
    assert [r["vehicle_id"] for r in decision_rows(untimed)] == ["EV-2", "EV-1"]


def test_open_sessions_understand_iso_end_times():
    now = to_epoch("2026-01-01T10:00:00Z")
    journal = [{"session_id": "late", "outcome": "admitted", "ends_at": "2026-01-01T10:01:00Z"},
               {"session_id": "done", "outcome": "admitted", "ends_at": "2026-01-01T09:59:00Z"}]
    assert [s["session_id"] for s in open_sessions(journal, now)] == ["late"]
    assert to_epoch("2026-01-01T10:00:00") == now  # naive ISO is UTC
    assert to_epoch("yesterday") is None and to_epoch(None) is None
