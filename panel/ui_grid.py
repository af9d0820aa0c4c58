"""The Smart grid view: loads, utilisation history, routing, decisions, strategy and burst."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from panel.api import ApiError, Balancer, Result, fetch_all
from panel.config import PanelConfig
from panel.ui import DOWN, UP, Clients, guarded, small_table, table
from panel.ui_history import grid_history
from panel.views_grid import (
    STRATEGIES,
    allocation_rows,
    allocation_spec,
    append_history,
    burst_summary,
    burst_text,
    decision_rows,
    load_spec,
    open_sessions,
    queue_rows,
    routing_rows,
    session_label,
    substation_rows,
    utilization_spec,
)

BURST_WORKERS = 16


def render(cfg: PanelConfig, clients: Clients) -> None:
    st.session_state.setdefault("history", [])
    st.session_state.setdefault("ended", set())
    st.fragment(run_every=cfg.refresh_s)(live)(clients)
    grid_history(cfg)  # load, utilisation, allocations, queue over time, from Prometheus
    st.divider()
    left, right = st.columns(2, gap="large")
    with left, guarded("strategy"):
        st.fragment(strategy_control)(clients.balancer)
    with right, guarded("burst"):
        st.fragment(burst_control)(clients.balancer)


def live(clients: Clients) -> None:
    calls = {"balancer": clients.balancer.status}
    calls |= {s.name: s.status for s in clients.substations}
    answers = fetch_all(calls)
    balancer = answers.pop("balancer")
    rows = substation_rows(balancer, answers)
    st.session_state["history"] = append_history(st.session_state["history"], rows, time.time())
    if isinstance(balancer, ApiError):
        st.error(f"{balancer} — routing data unavailable; loads below come from the "
                 f"substations themselves")
    else:
        st.markdown(f"routing strategy: **{balancer.get('strategy', '?')}**")
        st.session_state["strategy_now"] = balancer.get("strategy")
    with guarded("substations"):
        substation_cards(rows)
    chart_col, history_col = st.columns(2, gap="large")
    with chart_col, guarded("load chart"):
        st.markdown("**Load vs capacity**")
        st.vega_lite_chart(load_spec(rows), width="stretch")
    with history_col, guarded("utilisation chart"):
        st.markdown("**Utilisation, last minutes** (since this page opened)")
        st.vega_lite_chart(utilization_spec(st.session_state["history"]), width="stretch")
    with guarded("allocations and queue"):
        allocations_and_queue(balancer, answers)
    recent = [] if isinstance(balancer, ApiError) else balancer.get("recent") or []
    routing_col, decisions_col = st.columns([2, 3], gap="large")
    with routing_col, guarded("routing counts"):
        st.markdown("**Routing counts**")
        small_table(routing_rows(rows, recent), "no substations")
    with decisions_col, guarded("decisions"):
        st.markdown("**Last routing decisions** (newest first)")
        table(decision_rows(recent), "no decisions yet", height=300)
        end_session_control(clients.balancer, recent)


def allocations_and_queue(balancer: Result, direct: dict[str, Result]) -> None:
    """Smart charging: each car's share of its substation, and the cars waiting for room."""
    alloc_col, queue_col = st.columns([3, 2], gap="large")
    rows = allocation_rows(direct)
    with alloc_col:
        st.markdown("**Allocations** (max-min fair share; red: far below what the car asks)")
        if rows:
            st.vega_lite_chart(allocation_spec(rows), width="stretch")
        else:
            st.caption("No car charging.")
    length, waiting = queue_rows(balancer)
    with queue_col:
        st.markdown(f"**Queue**: {length} car{'s' if length != 1 else ''} waiting")
        small_table(waiting, "nobody waits")


def substation_cards(rows: list[dict]) -> None:
    if not rows:
        st.warning("No substations configured (SUBSTATIONS) and none known to the balancer.")
        return
    for column, row in zip(st.columns(len(rows)), rows, strict=True):
        with column, st.container(border=True):
            ok = row["reachable"] and row["healthy"] is not False
            st.subheader(f"{UP if ok else DOWN} {row['substation']}")
            if not row["reachable"]:
                st.error(f"{row['substation']} down: {row['problem']}")
            elif row["healthy"] is False:
                st.warning("balancer marks it unhealthy: not routing to it")
            st.metric("load / capacity", f"{row['load_kw']:.1f} / {row['capacity_kw']:.0f} kW")
            st.progress(min(max(row["utilization"], 0.0), 1.0),
                        text=f"{row['utilization'] * 100:.0f}% used")
            st.caption(f"{row['active_sessions']} active sessions · "
                       f"{row['routed_total']} routed here")


def end_session_control(balancer: Balancer, recent: list[dict]) -> None:
    ended: set[str] = st.session_state["ended"]
    sessions = open_sessions(recent, time.time(), ended)
    if not sessions:
        st.caption("No open session among the recent decisions.")
        return
    labels = {session_label(s): s["session_id"] for s in sessions}
    pick_col, button_col = st.columns([4, 1], vertical_alignment="bottom")
    choice = pick_col.selectbox("end a session", list(labels), key="end_pick")
    if button_col.button("End session", key="end_session") and choice in labels:
        session_id = labels[choice]
        result = balancer.end_session(session_id)
        if isinstance(result, ApiError) and result.status != 404:
            st.error(str(result))
        else:
            ended.add(session_id)
            st.success(f"ended {session_id}" if not isinstance(result, ApiError)
                       else f"{session_id} had already ended")


def strategy_control(balancer: Balancer) -> None:
    st.markdown("**Routing strategy**")
    now = st.session_state.get("strategy_now")
    index = STRATEGIES.index(now) if now in STRATEGIES else 0
    choice = st.selectbox("strategy", STRATEGIES, index=index, key="strategy_pick")
    if st.button("Switch strategy", key="strategy_apply"):
        result = balancer.set_strategy(choice)
        if isinstance(result, ApiError):
            st.error(str(result))
        else:
            st.session_state["strategy_now"] = result.get("strategy", choice)
            st.success(f"routing with {result.get('strategy', choice)}")


def burst_control(balancer: Balancer) -> None:
    st.markdown("**Burst** — N vehicles plug in at once; watch where they go")
    n_col, kw_col, s_col = st.columns(3)
    count = n_col.number_input("vehicles", 1, 500, 20, key="burst_n")
    power = kw_col.number_input("kW each", 1.0, 350.0, 7.4, step=0.1, key="burst_kw")
    duration = s_col.number_input("duration (s)", 5, 3600, 60, key="burst_s")
    if st.button("⚡ Burst", key="burst_go", type="primary"):
        results = run_burst(balancer, int(count), float(power), float(duration))
        st.session_state["burst"] = (burst_text(results), burst_summary(results))
    if "burst" in st.session_state:
        text, summary = st.session_state["burst"]
        st.info(text)
        small_table(summary, "")


def run_burst(balancer: Balancer, count: int, power_kw: float,
              duration_s: float) -> list[Result]:
    stamp = time.strftime("%H%M%S")
    with ThreadPoolExecutor(max_workers=min(BURST_WORKERS, count)) as pool:
        return list(pool.map(
            lambda i: balancer.charge(f"EV-burst-{stamp}-{i:03d}", power_kw, duration_s),
            range(count)))
