"""The Streamlit page in-process (AppTest) against the real running stack.

AppTest runs fragments once per run and never auto-refreshes them, so each check re-runs the
script explicitly; the live refresh itself is covered by the browser test.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from common.procs import free_port

APP = str(Path(__file__).resolve().parents[2] / "panel" / "app.py")


def page(view: str = "kv") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["view"] = view
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.subheader]
    parts += [e.value for e in at.caption] + [str(e.value) for e in at.info]
    parts += [str(e.value) for e in at.success] + [str(e.value) for e in at.warning]
    return "\n".join(parts)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def run_until(at: AppTest, predicate, timeout: float = 30.0) -> AppTest:
    """Re-run the page until `predicate(at)` holds, as the live refresh would."""
    deadline = time.monotonic() + timeout
    while not predicate(at):
        assert time.monotonic() < deadline, texts(at)
        time.sleep(0.5)
        at.run()
    return at


def test_kv_view_shows_every_node_with_clock_store_buffer_and_peers(panel_env, kv_nodes):
    key = f"!apptest-{uuid.uuid4().hex[:6]}"  # "!" sorts first in the store table
    kv_nodes[0].put(key, "hello")
    at = page("kv")
    no_errors(at)
    headers = [h.value for h in at.subheader]
    for name in ("node1", "node2", "node3"):
        assert any(h.endswith(name) for h in headers), headers
    clocks = [m.value for m in at.markdown if m.value.startswith("**vector clock**")]
    assert len(clocks) == 3
    assert {m.label for m in at.metric} >= {"keys", "buffered", "outbox"}
    run_until(at, lambda a: any(key in df.value["key"].tolist() for df in a.dataframe
                                if "key" in df.value.columns))
    peer_tables = [t.value for t in at.table if t.value.index.name == "peer"]
    assert len(peer_tables) == 3 and all("outbox" in t.columns for t in peer_tables)
    assert "Delivery timeline" in texts(at)


def test_put_and_get_carry_the_session_context(panel_env):
    at = page("kv")
    key = f"ctx-{uuid.uuid4().hex[:6]}"
    at.selectbox(key="kv_node").set_value("node1")
    at.text_input(key="kv_key").set_value(key)
    at.text_input(key="kv_value").set_value('{"n": 7}')
    at.button(key="kv_put").click().run()
    no_errors(at)
    context = at.session_state["context"]
    assert context is not None and context[0] >= 1
    assert f'PUT {key} at node1: {key} = {{"n":7}}' in texts(at)
    at.selectbox(key="kv_node").set_value("node3")
    at.button(key="kv_get").click().run()
    assert f'GET {key} at node3: {key} = {{"n":7}}' in texts(at)  # the context made it wait
    assert at.session_state["context"][0] >= context[0]
    at.button(key="kv_reset").click().run()
    assert at.session_state["context"] is None


def test_demo_button_narrates_buffering_then_delivery(panel_env):
    at = page("kv")
    at.button(key="play_demo").click().run()
    no_errors(at)
    run_until(at, lambda a: "back to normal" in texts(a), timeout=40)
    narration = texts(at)
    assert narration.index("node3 buffers y") < narration.index("node3 delivers x, then y")
    assert "Still missing: 1 write from node1" in narration
    assert "Verdict: x first, then y after" in narration
    no_errors(at)


def test_link_controls_delay_and_heal(panel_env, kv_nodes):
    at = page("kv")
    at.selectbox(key="link_from").set_value("node2")
    at.run()
    at.selectbox(key="link_to").set_value("node3")
    at.slider(key="link_delay").set_value(1500)
    at.button(key="link_apply").click().run()
    no_errors(at)
    assert kv_nodes[1].status()["links"]["2"]["delay_ms"] == 1500
    at.run()
    assert "node2 → node3 delay 1.5 s" in texts(at)
    at.button(key="link_heal").click().run()
    assert all(link["delay_ms"] == 0 and not link["paused"]
               for node in kv_nodes for link in node.status()["links"].values())


def test_grid_view_shows_substations_routing_and_decisions(panel_env, balancer):
    session = balancer.charge(f"EV-apptest-{uuid.uuid4().hex[:6]}", 5.0, 120)
    at = page("grid")
    no_errors(at)
    headers = [h.value for h in at.subheader]
    for name in ("substation1", "substation2", "substation3"):
        assert any(h.endswith(name) for h in headers), headers
    loads = [m.value for m in at.metric if m.label == "load / capacity"]
    assert len(loads) == 3 and all(v.endswith("kW") for v in loads)
    assert "routing strategy: **" in texts(at)
    routing = [t.value for t in at.table if t.value.index.name == "substation"]
    assert routing and routing[0]["routed"].sum() >= 1
    # the new session is in the decisions and can be ended from the page
    picker = at.selectbox(key="end_pick")
    label = next(o for o in picker.options if o.startswith(session["session_id"]))
    picker.set_value(label)
    at.button(key="end_session").click().run()
    no_errors(at)
    assert f"ended {session['session_id']}" in texts(at)
    gone = balancer.end_session(session["session_id"])
    assert getattr(gone, "status", None) == 404


def test_burst_and_strategy_switch(panel_env, balancer):
    at = page("grid")
    before = balancer.status()["strategy"]
    try:
        at.selectbox(key="strategy_pick").set_value("p2c")
        at.button(key="strategy_apply").click().run()
        no_errors(at)
        assert balancer.status()["strategy"] == "p2c"
        at.number_input(key="burst_n").set_value(6)
        at.number_input(key="burst_kw").set_value(2.0)
        at.number_input(key="burst_s").set_value(30)
        at.button(key="burst_go").click().run()
        no_errors(at)
        assert "Burst of 6 vehicles: 6 admitted, 0 not." in texts(at)
        summary = [t.value for t in at.table if t.value.index.name == "outcome"][0]
        assert summary["vehicles"].sum() == 6
    finally:
        balancer.set_strategy(before)


@pytest.fixture
def dead_services(monkeypatch, stack):
    """Node3 and the balancer pointed at ports where nothing listens."""
    urls = stack.node_urls[:2] + [f"http://127.0.0.1:{free_port()}"]
    monkeypatch.setenv("NODE_URLS", ",".join(urls))
    monkeypatch.setenv("BALANCER_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SUBSTATIONS", stack.env_for("panel")["SUBSTATIONS"])
    monkeypatch.setenv("ADMIN_TOKEN", stack.admin_token)


def test_a_down_service_is_shown_with_its_reason_never_a_traceback(dead_services):
    at = page("kv")
    assert not at.exception
    assert [e.value for e in at.error] == ["node3 down: connection refused"]
    assert len([m for m in at.markdown if m.value.startswith("**vector clock**")]) == 2
    at = page("grid")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("balancer down: connection refused")
    assert len([m for m in at.metric if m.label == "load / capacity"]) == 3


def test_bad_configuration_is_reported_on_the_page(monkeypatch):
    monkeypatch.setenv("SUBSTATIONS", "nonsense")
    at = page("grid")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Configuration error: SUBSTATIONS item 'nonsense' is not name=http://host:port"]


@pytest.mark.parametrize("view", ["kv", "grid"])
def test_without_prometheus_the_history_says_so_and_shows_live_values(panel_env, monkeypatch,
                                                                      view):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PROMETHEUS_URL", dead)
    at = page(view)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith(f"History unavailable: Prometheus at {dead} is not answering "
                            "(connection refused)") for w in warnings), warnings
    assert "History from Prometheus" not in texts(at)
    monkeypatch.setenv("PROMETHEUS_URL", "off")
    at = page(view)
    assert any("PROMETHEUS_URL is off" in w.value for w in at.warning)


def test_store_table_pages_and_searches_by_prefix(panel_env, kv_nodes, monkeypatch):
    prefix = f"pager-{uuid.uuid4().hex[:6]}:"
    wanted = {f"{prefix}{i}" for i in range(7)}
    for key in sorted(wanted):
        assert kv_nodes[0].put(key, 1)["key"] == key
    monkeypatch.setenv("PANEL_PAGE_SIZE", "3")
    at = page("kv")
    at.text_input(key="store_prefix").set_value(prefix).run()
    no_errors(at)

    def node1_keys(a) -> list[str]:
        frames = [df.value for df in a.dataframe if "key" in df.value.columns]
        return frames[0]["key"].tolist() if frames else []

    def node1_caption(a) -> str:  # the node columns come in order: node1's is first
        return [c.value for c in a.caption if c.value.startswith("store")][0]

    run_until(at, lambda a: len(node1_keys(a)) == 3)
    assert f"prefix '{prefix}' · page 1" in node1_caption(at)
    pages = [node1_keys(at)]
    while "(last)" not in node1_caption(at) and len(pages) < 10:
        at.button(key="store_next_node1").click().run()
        pages.append(node1_keys(at))
    assert len(pages) >= 3 and all(len(p) <= 3 for p in pages), pages
    assert set().union(*pages) == wanted  # every key once, nothing else
    assert sum(len(p) for p in pages) == len(wanted)
    at.button(key="store_back_node1").click().run()
    assert node1_keys(at) == pages[-2]
