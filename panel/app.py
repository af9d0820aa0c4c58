"""GridClock control panel: `streamlit run panel/app.py`. A client of the REST APIs only."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run panel/app.py` puts panel/ on sys.path, not the repo root.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from common.settings import ConfigError  # noqa: E402
from panel import ui, ui_grid, ui_kv  # noqa: E402
from panel.config import load_config  # noqa: E402

VIEWS = {"Causal KV": ("kv", ui_kv.render), "Smart grid": ("grid", ui_grid.render)}


def main() -> None:
    st.set_page_config(page_title="GridClock panel", page_icon="⚡", layout="wide")
    st.set_option("client.showErrorDetails", "none")  # a stray error never shows a traceback
    try:
        cfg = load_config()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        return
    clients = ui.make_clients(cfg)
    slugs = {slug: label for label, (slug, _) in VIEWS.items()}
    wanted = slugs.get(st.query_params.get("view", "kv"), "Causal KV")
    with st.sidebar:
        st.title("⚡ GridClock")
        label = st.radio("View", list(VIEWS), index=list(VIEWS).index(wanted), key="view")
        st.query_params["view"] = VIEWS[label][0]
        st.caption(f"refresh every {cfg.refresh_s:g} s")
        with st.expander("services"):
            for node in clients.nodes:
                st.caption(f"{node.name}: {node.base_url}")
            st.caption(f"balancer: {cfg.balancer_url}")
            for sub in clients.substations:
                st.caption(f"{sub.name}: {sub.base_url}")
            st.caption("admin token: " + ("set" if cfg.admin_token else "NOT SET (controls "
                                                                       "that need it will fail)"))
    st.header(label)
    with ui.guarded(label):
        VIEWS[label][1](cfg, clients)


main()
