"""The Causal KV view: node columns, delivery timeline, causal demo, put/get and link controls."""

from __future__ import annotations

import json

import streamlit as st

from panel.api import ApiError, KvNode, Result, fetch_all
from panel.config import PanelConfig
from panel.demo import DemoRun, causal_demo
from panel.render import format_clock, health_text
from panel.ui import DOWN, UNWELL, UP, Clients, guarded, small_table, table
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
)

EVENT_PAGES = 10  # per refresh, so a long log is caught up with in a few refreshes
LEVEL_ICON = {"info": ":blue[:material/info:]", "success": UP, "warning": UNWELL, "error": DOWN}


def render(cfg: PanelConfig, clients: Clients) -> None:
    st.session_state.setdefault("context", None)
    st.session_state.setdefault("kv_log", [])
    st.fragment(run_every=cfg.refresh_s)(live)(clients)
    st.divider()
    left, right = st.columns(2, gap="large")
    with left, guarded("put/get"):
        st.fragment(put_get)(clients)
    with right, guarded("links"):
        st.fragment(link_controls)(clients)


def live(clients: Clients) -> None:
    """Everything that changes by itself: redrawn every refresh without touching the widgets."""
    nodes = clients.nodes
    calls = {f"{n.name}/status": n.status for n in nodes}
    calls |= {f"{n.name}/health": n.health for n in nodes}
    answers = fetch_all(calls)
    statuses = {n.name: answers[f"{n.name}/status"] for n in nodes}
    with guarded("nodes"):
        for column, node in zip(st.columns(len(nodes)), nodes, strict=True):
            with column, guarded(node.name):
                node_column(node, statuses[node.name], answers[f"{node.name}/health"])
    faults = link_rows(statuses)
    if faults:
        st.warning("Injected link faults: " + "; ".join(
            f"{f['link']} delay {f['delay']}{' PAUSED' if f['paused'] else ''}" for f in faults))
    demo_col, timeline_col = st.columns([2, 3], gap="large")
    with demo_col, guarded("causal demo"):
        demo_section(clients)
    with timeline_col, guarded("timeline"):
        timeline_section(nodes)


def node_column(node: KvNode, status: Result, health: Result) -> None:
    healthy, words = health_text(health)
    if isinstance(status, ApiError):
        st.subheader(f"{DOWN} {node.name}")
        st.error(str(status))
        return
    st.subheader(f"{UP if healthy else UNWELL} {node.name}")
    if not healthy:
        st.warning(f"{node.name} unhealthy: {words}")
    head = node_headline(status)
    st.markdown(f"**vector clock** `{head['clock']}`")
    c1, c2, c3 = st.columns(3)
    c1.metric("keys", head["keys"])
    c2.metric("buffered", head["buffered"])
    c3.metric("outbox", head["outbox"])
    st.caption("store")
    table(store_rows(status), "empty store", height=min(35 * len(status.get("store") or {}) + 38,
                                                           220))
    st.caption("pending buffer")
    small_table(buffer_rows(status), "buffer empty")
    st.caption("peers: outbox and link")
    small_table(peer_rows(status), "no peers")


def timeline_section(nodes: list[KvNode]) -> None:
    """Deliveries per node, fetched incrementally from /events and kept in the session."""
    cache = st.session_state.setdefault("events", {})
    cursors = st.session_state.setdefault("event_cursors", {})
    problems = []
    for node in nodes:
        cursor = cursors.get(node.name, 0)
        for _ in range(EVENT_PAGES):
            page = node.events(since=cursor, limit=1000)
            if isinstance(page, ApiError):
                problems.append(str(page))
                break
            fresh = page.get("events") or []
            cache[node.name] = merge_events(cache.get(node.name, []), fresh)
            cursor = int(page.get("next", cursor))
            if len(fresh) < 1000:
                break
        cursors[node.name] = cursor
    st.markdown("**Delivery timeline** — colour: where the write happened; ringed: delivered "
                "after waiting in the buffer")
    if problems:
        st.caption("missing from the timeline: " + "; ".join(problems))
    rows = timeline_rows({n.name: cache.get(n.name, []) for n in nodes})
    if rows:
        st.vega_lite_chart(timeline_spec(rows), width="stretch")
    st.caption(timeline_caption(rows))


def demo_section(clients: Clients) -> None:
    run: DemoRun | None = st.session_state.get("demo")
    running = run is not None and not run.done
    st.markdown("**Causal demo** — node1 → node3 delayed 3 s; x written at node1, read at "
                "node2, y written at node2; node3 must buffer y until x arrives.")
    if st.button("▶ Play causal demo", key="play_demo", type="primary", disabled=running):
        run = DemoRun(causal_demo(clients.nodes, clients.nodes[0].admin_token)).start()
        st.session_state["demo"] = run
        running = True
    if run is None:
        st.caption("Press play; each step appears here as it happens.")
        return
    for step in list(run.steps):
        with st.container(border=True):
            st.markdown(f"{LEVEL_ICON[step.level]} **{step.number}. {step.title}**")
            st.write(step.text)
            st.caption("clocks: " + " · ".join(f"{n} {c}" for n, c in step.clocks.items()))
    if running:
        st.caption(":material/hourglass_top: demo running…")


def put_get(clients: Clients) -> None:
    st.markdown("**Put / get** with the session's causal context")
    names = [n.name for n in clients.nodes]
    at = st.selectbox("node", names, key="kv_node")
    node = clients.nodes[names.index(at)]
    key = st.text_input("key", value="x", key="kv_key")
    raw = st.text_input("value (JSON, or plain text)", value="A", key="kv_value")
    use_context = st.checkbox("send the session's context", value=True, key="kv_use_context")
    put_col, get_col, reset_col = st.columns(3)
    context = st.session_state["context"] if use_context else None
    action, result = "", None
    if put_col.button("PUT", key="kv_put", type="primary"):
        action, result = "PUT", node.put(key, parse_value(raw), context)
    if get_col.button("GET", key="kv_get"):
        action, result = "GET", node.get(key, context)
    if reset_col.button("Reset context", key="kv_reset"):
        st.session_state["context"] = None
    if result is not None:
        st.session_state["context"] = carry_context(st.session_state["context"], result)
        st.session_state["kv_log"] = ([kv_result_text(action, node.name, key, result)]
                                      + st.session_state["kv_log"])[:8]
    st.markdown(f"session context: `{format_clock(st.session_state['context'])}`")
    for i, line in enumerate(st.session_state["kv_log"]):
        (st.info if i == 0 else st.caption)(line)


def parse_value(raw: str) -> object:
    """Typed JSON when the text is JSON (42, true, {"a":1}), else the text itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def link_controls(clients: Clients) -> None:
    st.markdown("**Links** — delay or pause replication from one node to another")
    names = [n.name for n in clients.nodes]
    src_col, dst_col = st.columns(2)
    src = src_col.selectbox("from", names, key="link_from")
    dst = dst_col.selectbox("to", [n for n in names if n != src], key="link_to")
    delay = st.slider("delay (ms)", 0, 10_000, 0, step=250, key="link_delay")
    paused = st.checkbox("paused", key="link_paused")
    apply_col, heal_col = st.columns(2)
    if apply_col.button("Apply", key="link_apply") and dst:
        node = clients.nodes[names.index(src)]
        result = node.set_link(names.index(dst), delay, paused)
        if isinstance(result, ApiError):
            st.error(str(result))
        else:
            st.success(f"{src} → {dst}: delay {delay} ms{', paused' if paused else ''}")
    if heal_col.button("Heal all links", key="link_heal"):
        calls = {f"{a.name} → {b.name}": (lambda a=a, b=b: a.set_link(b.node_id, 0, False))
                 for a in clients.nodes for b in clients.nodes if a is not b}
        failed = [f"{pair}: {r}" for pair, r in fetch_all(calls).items()
                  if isinstance(r, ApiError)]
        if failed:
            st.error("; ".join(failed))
        else:
            st.success("every link: no delay, not paused")
