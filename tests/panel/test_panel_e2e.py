"""End to end: the real panel process in headless Chromium against the running local stack.

Checks live values (the page updates by itself after a write), the causal demo's
buffered-then-delivered narration, the grid view and a burst. Screenshots go to
tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
import uuid

import pytest

from common.procs import wait_until
from common.settings import REPO_ROOT
from panel import screenshots as browser

pytestmark = pytest.mark.tool("chromium", "the panel's browser test drives the system's chromium")

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CLOCK = re.compile(r"vector clock\s*\[(\d+), (\d+), (\d+)\]")


@pytest.fixture
def page(panel_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser.open_tab(30_000) as tab:
        yield tab


def main_text(page) -> str:
    return browser.main_text(page)


def routed_total(page) -> int:
    """Sum of the "N routed here" counters of the substation cards (they only grow)."""
    return sum(int(n) for n in re.findall(r"(\d+) routed here", main_text(page)))


def test_kv_view_is_live_and_plays_the_causal_demo(page, panel_url, kv_nodes):
    browser.open_view(page, panel_url, "kv")
    for name in browser.NODE_NAMES:
        page.get_by_role("heading", name=name).first.wait_for()
    assert len(CLOCK.findall(main_text(page))) == 3

    # live: a write made behind the page's back shows up without a reload
    key = f"!e2e-{uuid.uuid4().hex[:6]}"  # "!" sorts first: visible in a long store
    clock = kv_nodes[0].put(key, "live")["vector_clock"]
    page.get_by_text(f"[{', '.join(map(str, clock))}]").first.wait_for(timeout=15_000)
    # the store table is a canvas grid; its cells are in the page as an accessible table
    page.get_by_text(key, exact=True).first.wait_for(state="attached", timeout=15_000)

    browser.play_demo(page)
    assert browser.wait_buffer_shown(page), "node3's buffer never showed y waiting for x"
    page.screenshot(path=str(ARTIFACTS / "panel-kv-buffered.png"))
    browser.wait_demo_delivered(page)
    text = main_text(page)
    assert text.index("node3 buffers y") < text.index("node3 delivers x, then y")
    assert "Verdict: x first, then y after" in text
    assert "Traceback" not in text
    page.screenshot(path=str(ARTIFACTS / "panel-kv-delivered.png"))


def test_grid_view_shows_every_substation_and_a_burst(page, panel_url):
    browser.open_view(page, panel_url, "grid")
    for name in browser.SUBSTATION_NAMES:
        page.get_by_role("heading", name=name).first.wait_for()
    assert len(re.findall(r"\d+\.\d / \d+ kW", main_text(page))) == 3
    routed_before = routed_total(page)
    browser.burst(page, 5)
    page.get_by_text(re.compile(r"Burst of 5 vehicles: 5 admitted")).first.wait_for()
    # the live part picks the new sessions up by itself
    wait_until(lambda: routed_total(page) >= routed_before + 5, timeout=15,
               message="the burst's routing counts on the page")
    assert "routing strategy: " in main_text(page)
    assert "Traceback" not in main_text(page)
    page.screenshot(path=str(ARTIFACTS / "panel-grid.png"))
