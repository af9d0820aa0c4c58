"""Formatting shared by both views: clocks, values, times and node names as the page shows them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from panel.api import ApiError, Result


def node_label(node_id: object) -> str:
    """NODE_ID 0 is node1 (the service names); labels that are already names pass through."""
    if isinstance(node_id, bool):
        return str(node_id)
    if isinstance(node_id, int):
        return f"node{node_id + 1}"
    text = str(node_id)
    return f"node{int(text) + 1}" if text.isdigit() else text


def node_index(node_id: object) -> int | None:
    """0-based NODE_ID from an int, "2" or "node3"; None when it is neither."""
    if isinstance(node_id, int) and not isinstance(node_id, bool):
        return node_id
    text = str(node_id)
    if text.isdigit():
        return int(text)
    if text.startswith("node") and text[4:].isdigit():
        return int(text[4:]) - 1
    return None


def format_clock(vc: Sequence[int] | None) -> str:
    return "—" if vc is None else "[" + ", ".join(str(x) for x in vc) + "]"


def format_value(value: object, limit: int = 60) -> str:
    """Values are any JSON: strings shown bare, everything else as compact JSON, cut at `limit`."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_ms(ms: object) -> str:
    """A duration in ms as "850 ms" or "3.2 s"."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def format_time(value: object) -> str:
    """Epoch seconds (or ms) or an ISO string as a local HH:MM:SS; other values as given."""
    seconds = to_epoch(value)
    if seconds is not None:
        return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")
    return "" if value is None else str(value)


def to_epoch(value: object) -> float | None:
    """Epoch seconds from epoch seconds/ms or an ISO-8601 string; None when it is neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def error_text(result: Result) -> str | None:
    """The one-line reason a result is unusable, or None when it is data."""
    return str(result) if isinstance(result, ApiError) else None


def health_text(result: Result) -> tuple[bool, str]:
    """(healthy, words) for a /health answer."""
    if isinstance(result, ApiError):
        return False, result.reason
    status = result.get("status")
    return True, str(status) if status else "healthy"
