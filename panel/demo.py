"""The causal demo for the panel: the KV CLI's seed scenario, narrated with every node's clock.

The scenario itself (slow node1 → node3 link, x written at node1 and read at node2, y written at
node2, node3 buffering y until x arrives) lives in one place, `nodes.client.demo_steps`, which
`python -m nodes.client demo` plays too. This module turns its steps into the panel's narrated
steps (phase, level, clocks of all nodes at that moment), adds the closing "link healed" step,
and plays it in a background thread (DemoRun) so the live columns keep refreshing meanwhile and
show y sitting in node3's buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from nodes.client import DemoStep as CliStep
from nodes.client import KVError, demo_steps
from panel.api import ApiError, KvNode, fetch_all
from panel.render import format_clock, format_ms
from panel.views_kv import waiting_for

Level = Literal["info", "success", "warning", "error"]
PHASES = ("link", "put-x", "read-x", "put-y", "buffered", "delivered", "healed")


@dataclass(frozen=True)
class DemoStep:
    number: int
    phase: str  # one of PHASES, or "failed"
    title: str
    text: str
    clocks: dict[str, str] = field(default_factory=dict)
    level: Level = "info"


def clocks_now(nodes: list[KvNode]) -> dict[str, str]:
    """Every node's vector clock as text, or why it could not be read."""
    statuses = fetch_all({node.name: node.status for node in nodes})
    return {name: (f"down ({s.reason})" if isinstance(s, ApiError)
                   else format_clock(s.get("vector_clock"))) for name, s in statuses.items()}


def delivery_verdict(events: list[dict[str, Any]]) -> tuple[Level, str]:
    """Did node3 deliver x before y, and did y wait in the buffer? (level, one sentence)"""
    keys = [e.get("key") for e in events]
    if keys[:2] != ["x", "y"]:
        return "error", f"delivery order was {keys}: causal order NOT kept"
    held = events[1].get("buffered_ms") or 0
    if held <= 0:
        return "warning", "x then y, but y did not wait in the buffer (was the link slow?)"
    return "success", (f"x first, then y after {format_ms(held)} in the buffer: nobody at "
                       f"node3 could read y without x")


def narrate(index: int, step: CliStep) -> tuple[str, Level, str]:
    """(phase, level, extra sentence) for the CLI's index-th step, from the data it carries."""
    data = step.data
    phase = PHASES[index] if index < len(PHASES) else "step"
    if "buffered" in data:
        if not data["buffered"]:
            return "buffered", "warning", ""
        message, status = data["message"], data["status"]
        need = waiting_for(message, status.get("vector_clock"))
        return "buffered", "warning", f"Still missing: {need}."
    if "events" in data:
        level, verdict = delivery_verdict(data["events"])
        return "delivered", level, f"Verdict: {verdict}."
    return phase, "info", ""


def panel_steps(cli_steps: Iterable[CliStep], clocks: Callable[[], dict[str, str]],
                healed: str = "node1 → node3") -> Iterator[DemoStep]:
    """The CLI's steps as panel steps; a failure becomes a final error step, never an exception."""
    number = 0
    try:
        for index, step in enumerate(cli_steps):
            phase, level, extra = narrate(index, step)
            number += 1
            text = f"{step.detail} {extra}".strip()
            yield DemoStep(number, phase, step.title, text, clocks(), level)
    except (KVError, KeyError, TypeError, ValueError) as exc:
        yield DemoStep(number + 1, "failed", "Demo stopped", str(exc), clocks(), "error")
        return
    yield DemoStep(number + 1, "healed", f"Link {healed} back to normal",
                   "Delay removed. Once replication settles every node has the same clock and "
                   "the same values.", clocks(), "success")


def causal_demo(nodes: list[KvNode], admin_token: str | None,
                delay_ms: int = 3000) -> Iterator[DemoStep]:
    """The seed scenario against the panel's nodes, narrated step by step."""
    if len(nodes) < 3:
        return iter([DemoStep(1, "failed", "Demo needs three nodes",
                              f"The panel knows {len(nodes)} node(s).", level="error")])
    cli = demo_steps([n.base_url for n in nodes], admin_token or "", delay_ms)
    return panel_steps(cli, lambda: clocks_now(nodes), f"{nodes[0].name} → {nodes[2].name}")


class DemoRun:
    """Plays the demo in a daemon thread; the page renders `steps` as they arrive."""

    def __init__(self, steps: Iterator[DemoStep]):
        self.steps: list[DemoStep] = []
        self.done = False
        self._iterator = steps
        self._thread = threading.Thread(target=self._run, name="causal-demo", daemon=True)

    def start(self) -> DemoRun:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for step in self._iterator:
                self.steps.append(step)
        except Exception as exc:  # noqa: BLE001 - shown on the page as a failed step
            self.steps.append(DemoStep(len(self.steps) + 1, "failed", "Demo crashed",
                                       f"{type(exc).__name__}: {exc}", level="error"))
        finally:
            self.done = True

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
