"""Screenshots of both panel views for the docs: `make screenshots` (python -m panel.screenshots).

Starts a private local stack with the panel (and Prometheus, when installed) on free ports, or
uses --url of a running panel; writes LOAD_KEYS keys through the API, plays the causal demo and
two charging bursts through the page itself in headless Chromium, and writes
docs/img/panel-kv.png (node3 holding y in its buffer), docs/img/panel-timeline.png (the
aggregated timeline of the denser window) and docs/img/panel-grid.png.
The browser steps are shared with the end-to-end test (tests/panel/test_panel_e2e.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.settings import REPO_ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1600, "height": 1000}
IMG_DIR = REPO_ROOT / "docs" / "img"
LOAD_KEYS = 3_000
SLOW_MS = 120_000  # screenshots are not timed: wait as long as a busy machine needs
NODE_NAMES = ("node1", "node2", "node3")
SUBSTATION_NAMES = ("substation1", "substation2", "substation3")


def chromium_path() -> str | None:
    """The system's Chromium (CHROMIUM=/path overrides), found on PATH like the shell does."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if os.path.isabs(override) and os.access(override, os.X_OK) else None
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def launch(playwright, executable: str | None = None):
    """The system's chromium, headless; Playwright's own browser downloads are never used."""
    executable = executable or chromium_path()
    if executable is None:
        raise FileNotFoundError("chromium is not on PATH (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


@contextmanager
def open_tab(timeout_ms: int) -> Iterator:
    """A page in a fresh headless Chromium, closed (with the browser) on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def open_view(page, panel_url: str, view: str, timeout_ms: int = 90_000) -> None:
    """Load one view (kv | grid) and wait until its live part has rendered once."""
    page.goto(f"{panel_url.rstrip('/')}/?view={view}", wait_until="domcontentloaded")
    live, last = (("vector clock", "session context:") if view == "kv"
                  else ("load / capacity", "N vehicles plug in at once"))
    page.get_by_text(live).first.wait_for(timeout=timeout_ms)
    # the controls render at the end of the first full run; clicks before that are queued
    page.get_by_text(last).first.wait_for(timeout=timeout_ms)


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def play_demo(page, timeout_ms: int = 30_000) -> None:
    """Press the demo button and wait until node3 is seen buffering y (the page shows it)."""
    # force: while the live part re-runs, Streamlit fades it, and Playwright would wait for a
    # "stable" button forever on a slow machine
    page.get_by_role("button", name="Play causal demo").click(force=True)
    page.get_by_text("node3 buffers y").first.wait_for(timeout=timeout_ms)


def wait_buffer_shown(page, timeout_ms: int = 10_000) -> bool:
    """Wait for node3's column to list the pending message; False if it was delivered first."""
    try:
        page.locator("[data-testid='stTable']").get_by_text("1 write from node1").first \
            .wait_for(timeout=timeout_ms)
        return True
    except Exception:  # noqa: BLE001 - a Playwright timeout: the moment passed
        return False


def wait_demo_delivered(page, timeout_ms: int = 30_000) -> None:
    page.get_by_text("node3 delivers x, then y").first.wait_for(timeout=timeout_ms)
    page.get_by_text("back to normal").first.wait_for(timeout=timeout_ms)


def burst(page, vehicles: int, timeout_ms: int = 30_000) -> None:
    """Fill in the burst form and press the button; wait for its summary."""
    field = page.get_by_label("vehicles")
    field.fill(str(vehicles))
    field.press("Enter")
    page.get_by_role("button", name="Burst").click()
    page.get_by_text(f"Burst of {vehicles} vehicles").first.wait_for(timeout=timeout_ms)


def dense_timeline(page, window: str = "latest 1,000", timeout_ms: int = 30_000) -> None:
    """Switch the timeline to a window too dense for one mark per delivery."""
    page.get_by_label("deliveries per node").click()
    page.get_by_text(window, exact=True).click()
    page.get_by_text("Time waited in the buffer").first.wait_for(timeout=timeout_ms)
    page.wait_for_timeout(1500)  # let Vega draw


def timeline_shot(page, path: Path) -> None:
    """The timeline's block of the page only (cut out of the grown viewport)."""
    block = page.locator("[data-testid='stVerticalBlock']").filter(
        has_text="Time waited in the buffer").last
    full_page_shot(page, path, clip=block)


def full_page_shot(page, path: Path, clip=None) -> None:
    """Streamlit scrolls inside its main block, not the page: grow the viewport to fit it.
    With `clip` (a locator), only that element's box."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]')]"
                           ".map(e => e.scrollHeight))")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": int(height) + 40})
    page.wait_for_timeout(1500)  # Vega redraws at the new width
    box = clip.bounding_box() if clip is not None else None
    if box:
        page.screenshot(path=str(path), clip=box, timeout=180_000)
    else:
        page.screenshot(path=str(path), full_page=True, timeout=180_000)
    page.set_viewport_size(VIEWPORT)


def capture(panel_url: str, out_dir: Path) -> list[Path]:
    """Drive the panel and write panel-kv.png and panel-grid.png into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kv_png, grid_png = out_dir / "panel-kv.png", out_dir / "panel-grid.png"
    timeline_png = out_dir / "panel-timeline.png"
    # A busy machine draws slowly; none of it is timed.
    with open_tab(SLOW_MS) as page:
        open_view(page, panel_url, "kv", SLOW_MS)
        play_demo(page, SLOW_MS)
        wait_buffer_shown(page)
        full_page_shot(page, kv_png)
        wait_demo_delivered(page, SLOW_MS)
        dense_timeline(page, timeout_ms=SLOW_MS)
        timeline_shot(page, timeline_png)
        open_view(page, panel_url, "grid", SLOW_MS)
        for vehicles in (12, 18):
            burst(page, vehicles, SLOW_MS)
            page.wait_for_timeout(3000)  # let the utilisation history grow a few points
        full_page_shot(page, grid_png)
    return [kv_png, timeline_png, grid_png]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m panel.screenshots", description=__doc__)
    parser.add_argument("--url", help="use this running panel (it and its stack get a demo "
                                      "and a burst) instead of starting a private stack")
    parser.add_argument("--out", type=Path, default=IMG_DIR, help="where the PNGs go")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        print("chromium not found on PATH: install Debian's chromium package", file=sys.stderr)
        return 1
    if args.url:
        paths = capture(args.url, args.out)
    else:
        from panel.loadgen import put_keys
        from stack.local import LocalStack

        with tempfile.TemporaryDirectory(prefix="gridclock-screens-") as workdir:
            print("starting a private stack with the panel…", flush=True)
            stack = LocalStack(Path(workdir)).start(
                panel=True, prometheus=shutil.which("prometheus") is not None)
            try:
                print(f"writing {LOAD_KEYS} keys…", flush=True)
                put_keys(stack.node_urls, LOAD_KEYS)
                paths = capture(stack.urls["panel"], args.out)
            finally:
                stack.stop()
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
