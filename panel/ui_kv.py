"""The Causal KV view: node columns, delivery timeline, causal demo, put/get and link controls."""

from __future__ import annotations

import json
import time

import streamlit as st

from panel import timeline as tl
from panel.api import ApiError, KvNode, Result, fetch_all
from panel.config import PanelConfig
from panel.demo import DemoRun, causal_demo
from panel.render import format_clock, health_text
from panel.stores import Pager, store_page
from panel.ui import DOWN, UNWELL, UP, Clients, guarded, small_table, table
from panel.ui_history import kv_history
from panel.views_kv import (
    buffer_rows,
    carry_context,
    kv_result_text,
    link_rows,
    node_headline,
    node_state,
    peer_rows,
    sync_rows,
    timeline_caption,
    timeline_rows,
    timeline_spec,
)

EVENT_PAGES = 5  # /events calls per node per refresh while catching up with the latest window
SAMPLES_KEEP_S = 600  # the page's own samples of buffer/outbox depth (Prometheus fallback)
LEVEL_ICON = {"info": ":blue[:material/info:]", "success": UP, "warning": UNWELL, "error": DOWN}


def render(cfg: PanelConfig, clients: Clients) -> None:
    st.session_state.setdefault("context", None)
    st.session_state.setdefault("kv_log", [])
    st.fragment(run_every=cfg.refresh_s)(live)(clients, cfg.page_size)
    st.divider()
    kv_history(cfg)
    st.divider()
    left, right = st.columns(2, gap="large")
    with left, guarded("put/get"):
        st.fragment(put_get)(clients)
    with right, guarded("links"):
        st.fragment(link_controls)(clients)


def live(clients: Clients, page_size: int = 50) -> None:
    """Everything that changes by itself: redrawn every refresh without touching the widgets."""
    nodes = clients.nodes
    calls = {f"{n.name}/status": n.status for n in nodes}
    calls |= {f"{n.name}/health": n.health for n in nodes}
    answers = fetch_all(calls)
    statuses = {n.name: answers[f"{n.name}/status"] for n in nodes}
    sample(statuses)
    prefix = st.text_input("key prefix (store tables)", key="store_prefix",
                           placeholder="all keys")
    with guarded("nodes"):
        for column, node in zip(st.columns(len(nodes)), nodes, strict=True):
            with column, guarded(node.name):
                node_column(node, statuses[node.name], answers[f"{node.name}/health"],
                            prefix, page_size)
    faults = link_rows(statuses)
    if faults:
        st.warning("Injected link faults: " + "; ".join(
            f"{f['link']} delay {f['delay']}{' PAUSED' if f['paused'] else ''}" for f in faults))
    demo_col, timeline_col = st.columns([2, 3], gap="large")
    with demo_col, guarded("causal demo"):
        demo_section(clients)
    with timeline_col, guarded("timeline"):
        timeline_section(nodes, statuses)


def sample(statuses: dict[str, Result]) -> None:
    """Buffer and outbox depth per node, kept by the page for when Prometheus is not there."""
    now = time.time()
    samples = [s for s in st.session_state.get("kv_samples", []) if now - s["t"] <= SAMPLES_KEEP_S]
    for name, status in statuses.items():
        if not isinstance(status, ApiError):
            head = node_headline(status)
            samples.append({"t": now, "series": name,
                            "buffered": int(head["buffered"].replace(",", "")),
                            "outbox": int(head["outbox"].replace(",", ""))})
    st.session_state["kv_samples"] = samples


def node_column(node: KvNode, status: Result, health: Result, prefix: str = "",
                page_size: int = 50) -> None:
    healthy, words = health_text(health)
    if isinstance(status, ApiError):
        st.subheader(f"{DOWN} {node.name}")
        st.error(str(status))
        return
    state, level = node_state(status)
    st.subheader(f"{UP if healthy and level != 'warning' else UNWELL} {node.name}")
    if not healthy:
        st.warning(f"{node.name} unhealthy: {words}")
    if level == "warning":
        st.warning(f"{node.name} is **{state}**: it refuses writes until it has caught up "
                   f"with its peers")
    elif state:
        st.caption(f"state: {state}")
    head = node_headline(status)
    st.markdown(f"**vector clock** `{head['clock']}`")
    c1, c2, c3 = st.columns(3)
    c1.metric("keys", head["keys"])
    c2.metric("buffered", head["buffered"])
    c3.metric("outbox", head["outbox"])
    store_table(node, status, prefix, page_size)
    st.caption("pending buffer")
    small_table(buffer_rows(status), "buffer empty")
    st.caption("peers: outbox and link")
    small_table(peer_rows(status), "no peers")
    sync = sync_rows(status)
    if sync:
        st.caption("anti-entropy (sync) per peer")
        small_table(sync, "")


def store_table(node: KvNode, status: Result, prefix: str, page_size: int) -> None:
    """One page of the node's keys (GET /kv), with back/next; never the whole store."""
    pagers: dict[str, Pager] = st.session_state.setdefault("store_pagers", {})
    pager = pagers.setdefault(node.name, Pager())
    if pager.prefix != prefix:
        pager.reset(prefix)
    nexts: dict[str, str | None] = st.session_state.setdefault("store_next", {})
    back_col, label_col, next_col = st.columns([1, 3, 1], vertical_alignment="center")
    if back_col.button("◀", key=f"store_back_{node.name}", disabled=pager.page_number == 1,
                       help="previous page"):
        pager.back()
    if next_col.button("▶", key=f"store_next_{node.name}", disabled=not nexts.get(node.name),
                       help="next page"):
        pager.forward(nexts.get(node.name))
    page = store_page(node.list_keys(prefix, pager.cursor, page_size), status, prefix,
                      pager.cursor, page_size)
    nexts[node.name] = page.next_cursor
    label_col.caption(f"store{f' · prefix {prefix!r}' if prefix else ''} · page "
                      f"{pager.page_number}{'' if page.next_cursor else ' (last)'}")
    if page.note:
        st.caption(f":orange[{page.note}]")
    table(page.rows, "no keys" + (f" starting with {prefix!r}" if prefix else ""),
          height=min(35 * len(page.rows) + 38, 250))


def timeline_section(nodes: list[KvNode], statuses: dict[str, Result]) -> None:
    """The latest window of deliveries per node (or an older one while paging back through
    /events?since=), drawn one mark per delivery or aggregated when too dense."""
    state = st.session_state.setdefault("timeline", {"live": {}, "paged": {}, "paging": False})
    st.markdown("**Delivery timeline** — colour: where the write happened; red: delivered "
                "after waiting in the buffer")
    size_col, mode_col = st.columns(2)
    window = size_col.selectbox("deliveries per node", tl.WINDOWS, key="tl_window",
                                format_func=lambda n: f"latest {n:,}")
    mode = mode_col.radio("draw", ["auto", "each delivery", "aggregated"], horizontal=True,
                          key="tl_mode")
    if state.get("window") != window:
        state.update(window=window, live={}, paged={}, paging=False)
    older_col, newer_col, latest_col = st.columns(3)
    problems: list[str] = []
    if older_col.button("◀ older", key="tl_older"):
        shown = state["paged"] if state["paging"] else state["live"]
        state["paged"] = page_older(nodes, shown, window, problems)
        state["paging"] = True
    if newer_col.button("newer ▶", key="tl_newer", disabled=not state["paging"]):
        state["paged"], at_end = page_newer(nodes, state["paged"], window, problems)
        state["paging"] = not at_end
    if latest_col.button("latest", key="tl_latest", disabled=not state["paging"]):
        state["paging"] = False
    catch_up(nodes, statuses, state["live"], window, problems)
    shown = state["paged"] if state["paging"] else state["live"]
    events_by_node = {n.name: shown.get(n.name, []) for n in nodes}
    if problems:
        st.caption("missing from the timeline: " + "; ".join(problems))
    st.caption(tl.window_caption(events_by_node, state["paging"]))
    dense = tl.is_dense(events_by_node)
    if mode == "aggregated" or (mode == "auto" and dense):
        rows, bucket_s = tl.rate_rows(events_by_node)
        if rows:
            st.vega_lite_chart(tl.rate_spec(rows, bucket_s), width="stretch")
        buffered = tl.buffered_rows(events_by_node)
        if buffered:
            st.markdown("**Time waited in the buffer** (buffered deliveries only)")
            st.vega_lite_chart(tl.buffered_spec(buffered), width="stretch")
        else:
            st.caption("No delivery in this window waited in a buffer.")
        return
    rows = timeline_rows(events_by_node)
    if rows:
        st.vega_lite_chart(timeline_spec(rows, last=min(window, tl.MARKS_MAX)), width="stretch")
    st.caption(timeline_caption(rows))


def catch_up(nodes: list[KvNode], statuses: dict[str, Result], live: dict[str, list],
             window: int, problems: list[str]) -> None:
    """Read each node's new deliveries, keeping its latest `window`; the first read jumps close
    to the end of the log (the clock's sum) instead of reading the whole log."""
    limit = min(window, tl.EVENTS_PAGE_MAX)
    for node in nodes:
        cached = live.get(node.name, [])
        if cached:
            since = int(cached[-1].get("seq") or 0)
        else:
            status = statuses.get(node.name)
            clock = None if isinstance(status, ApiError) else (status or {}).get("vector_clock")
            since = tl.latest_start(clock, window)
        for attempt in range(EVENT_PAGES):
            page = node.events(since=since, limit=limit)
            if isinstance(page, ApiError):
                problems.append(str(page))
                break
            fresh = page.get("events") or []
            if not fresh and not cached and since > 0 and attempt < 2:
                since = max(0, since - window)  # the guess overshot the end of the log
                continue
            cached = tl.keep_window(cached, fresh, window)
            since = int(page.get("next", since))
            if len(fresh) < limit:
                break
        live[node.name] = cached


def page_older(nodes: list[KvNode], shown: dict[str, list], window: int,
               problems: list[str]) -> dict[str, list]:
    older = {}
    for node in nodes:
        events = shown.get(node.name) or []
        fetch = tl.older_page(int(events[0].get("seq") or 0), window) if events else None
        if fetch is None:
            older[node.name] = events
            continue
        page = node.events(since=fetch.since, limit=fetch.limit)
        if isinstance(page, ApiError):
            problems.append(str(page))
            older[node.name] = events
        else:
            older[node.name] = page.get("events") or events
    return older


def page_newer(nodes: list[KvNode], shown: dict[str, list], window: int,
               problems: list[str]) -> tuple[dict[str, list], bool]:
    newer, at_end = {}, True
    limit = min(window, tl.EVENTS_PAGE_MAX)
    for node in nodes:
        events = shown.get(node.name) or []
        since = int(events[-1].get("seq") or 0) if events else 0
        page = node.events(since=since, limit=limit)
        if isinstance(page, ApiError):
            problems.append(str(page))
            newer[node.name] = events
            continue
        fresh = page.get("events") or []
        newer[node.name] = fresh or events
        at_end = at_end and len(fresh) < limit
    return newer, at_end


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
