"""History charts (Streamlit): from Prometheus when it answers, else the page's own samples."""

from __future__ import annotations

import time
from collections.abc import Sequence

import streamlit as st

from panel.api import ApiError, Prometheus, fetch_all
from panel.config import PanelConfig
from panel.history import (
    GRID_CHARTS,
    KV_CHARTS,
    RANGES,
    Chart,
    history_spec,
    live_rows,
    matrix_rows,
    query_for,
)
from panel.ui import guarded

HISTORY_REFRESH_S = 5.0


def grid_history(cfg: PanelConfig) -> None:
    """Load, utilisation, allocations and queue length over 5 min / 1 h / 6 h."""
    st.fragment(run_every=max(cfg.refresh_s, HISTORY_REFRESH_S))(_section)(
        cfg, "grid", GRID_CHARTS, "history", "substation", ["utilization"])


def kv_history(cfg: PanelConfig) -> None:
    """PUT rate, visibility latency, buffer and outbox depths over 5 min / 1 h / 6 h."""
    st.fragment(run_every=max(cfg.refresh_s, HISTORY_REFRESH_S))(_section)(
        cfg, "kv", KV_CHARTS, "kv_samples", "series", ["buffered", "outbox"])


def _section(cfg: PanelConfig, view: str, charts: Sequence[Chart], samples_key: str,
             series_field: str, sample_fields: list[str]) -> None:
    with guarded("history"):
        label = st.radio("history", list(RANGES), horizontal=True, key=f"history_range_{view}")
        span_s, step_s = RANGES[label]
        problem = "PROMETHEUS_URL is off" if cfg.prometheus_url is None else None
        answers = {}
        if cfg.prometheus_url is not None:
            prom = Prometheus(cfg.prometheus_url, cfg.timeout_s)
            end = time.time()
            answers = fetch_all({c.title: (lambda c=c: prom.query_range(
                query_for(c, step_s), end - span_s, end, step_s)) for c in charts})
            errors = [a for a in answers.values() if isinstance(a, ApiError)]
            if errors and all(e.down for e in errors) and len(errors) == len(charts):
                problem = (f"Prometheus at {cfg.prometheus_url} is not answering "
                           f"({errors[0].reason})")
        if problem:
            st.warning(f"History unavailable: {problem}. Showing the live values this page has "
                       f"sampled since it opened.")
            samples = [{**s, "series": s.get(series_field)}
                       for s in st.session_state.get(samples_key, [])]
            rows = live_rows(samples, sample_fields)
            st.vega_lite_chart(history_spec(rows, "live samples (this page only)",
                                            ", ".join(sample_fields)), width="stretch")
            return
        st.caption(f"History from Prometheus ({cfg.prometheus_url}), last {label}, "
                   f"one point every {step_s} s; the same for every browser and after a reload.")
        for start in range(0, len(charts), 2):
            for column, chart in zip(st.columns(2), charts[start:start + 2], strict=False):
                with column, guarded(chart.title):
                    answer = answers[chart.title]
                    if isinstance(answer, ApiError):
                        st.caption(f"{chart.title}: {answer}")
                        continue
                    rows = matrix_rows(answer, chart.by)
                    if rows:
                        st.vega_lite_chart(history_spec(rows, chart.title, chart.unit),
                                           width="stretch")
                    else:
                        st.caption(f"{chart.title}: no data in Prometheus for this range yet")
