"""Streamlit helpers shared by both views: guarded sections and the service clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from panel.api import Balancer, KvNode, Substation
from panel.config import PanelConfig


@dataclass(frozen=True)
class Clients:
    nodes: list[KvNode]
    balancer: Balancer
    substations: list[Substation]


def make_clients(cfg: PanelConfig) -> Clients:
    return Clients(
        nodes=[KvNode(i, url, cfg.timeout_s, cfg.admin_token)
               for i, url in enumerate(cfg.node_urls)],
        balancer=Balancer(cfg.balancer_url, cfg.timeout_s, cfg.admin_token),
        substations=[Substation(name, url, cfg.timeout_s) for name, url in cfg.substations],
    )


@contextmanager
def guarded(section: str) -> Iterator[None]:
    """Show an unexpected failure of one section as one line; the rest of the page still renders.

    Streamlit's own rerun/stop signals derive from BaseException and pass through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        st.error(f"{section}: {type(exc).__name__}: {exc}")


def table(rows: list[dict], empty: str, height: int | None = None) -> None:
    """A scrollable table for long data, or a caption saying why there is none."""
    if rows:
        st.dataframe(rows, hide_index=True, height=height or "auto")
    else:
        st.caption(empty)


UP = ":green[:material/check_circle:]"
DOWN = ":red[:material/error:]"
UNWELL = ":orange[:material/warning:]"


def small_table(rows: list[dict], empty: str, limit: int = 20) -> None:
    """A static HTML table (its text is in the page, unlike st.dataframe's canvas) for few rows,
    indexed by its first column."""
    if not rows:
        st.caption(empty)
        return
    frame = pd.DataFrame(rows[:limit])
    st.table(frame.set_index(frame.columns[0]))
    if len(rows) > limit:
        st.caption(f"… and {len(rows) - limit} more")
