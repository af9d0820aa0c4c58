"""Load-test settings from the environment, and the RUN_TIME parser.

Deliberately standalone (stdlib only, no `common.settings`): compose mounts `loadtest/` alone at
/mnt/locust inside the Locust image, where the rest of the repo is not installed. The default
URLs come from the stack's one service list (`stack.services.default_settings`) when the repo is
installed; in the Locust image compose sets both variables.

Environment: BALANCER_URL, NODE_URLS (comma list, ordered by NODE_ID), RUN_TIME (60s, 5m, 1h30m),
PEAK_USERS (0 = work it out from the grid capacity), GRID_CAPACITY_KW (300 locally).
"""

from __future__ import annotations

import os
import re

try:
    from stack.services import default_settings as _stack_defaults
except ImportError:  # the Locust image: only loadtest/ is there, and compose sets the URLs
    _stack_defaults = None
DEFAULT_RUN_TIME_S = 300.0
DEFAULT_GRID_CAPACITY_KW = 300.0  # substations 150 + 100 + 50 kW in the local stack

# Charger power levels (kW) and how often drivers use them: home/AC wallboxes dominate,
# a few DC fast chargers pull a lot at once.
POWER_MIX: tuple[tuple[float, int], ...] = ((3.7, 25), (7.4, 30), (11.0, 25), (22.0, 15), (50.0, 5))

REFUSED_NAME = "/charge [refused 503]"  # how a grid refusal shows up in Locust's statistics
QUEUED_NAME = "/charge [queued 202]"  # a car that asked to wait and joined the queue
FROM_QUEUE_NAME = "/sessions/[queued] admitted"  # the poll that saw a queued car charging
CANCELLED_NAME = "/sessions/[queued] cancelled"  # a waiting car that gave up

_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_timespan(text: str) -> float:
    """Seconds in '60s', '5m', '1h30m', '90' (plain seconds); ValueError on anything else."""
    compact = str(text).strip().lower().replace(" ", "")
    if not compact:
        raise ValueError("empty run time")
    total, pos = 0.0, 0
    for match in _SPAN.finditer(compact):
        if match.start() != pos or match.end() == pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f"bad run time {text!r}: use e.g. 60s, 5m, 1h30m")
    if total <= 0:
        raise ValueError(f"run time {text!r} must be positive")
    return total


def _default(name: str) -> str:
    if _stack_defaults is None:
        raise ValueError(f"{name} is not set (and the stack's defaults are not installed here)")
    return _stack_defaults()[name]


def balancer_url() -> str:
    return os.environ.get("BALANCER_URL", "").strip() or _default("BALANCER_URL")


def node_urls() -> list[str]:
    raw = os.environ.get("NODE_URLS", "").strip() or _default("NODE_URLS")
    return [url.strip().rstrip("/") for url in raw.split(",") if url.strip()]


def run_time_s(parsed: float | int | None = None) -> float:
    """The rush hour's total length: Locust's --run-time if given, else RUN_TIME, else 5 min."""
    if parsed:
        return float(parsed)
    raw = os.environ.get("RUN_TIME", "").strip()
    return parse_timespan(raw) if raw else DEFAULT_RUN_TIME_S


def peak_users_override() -> int:
    raw = os.environ.get("PEAK_USERS", "").strip()
    return int(raw) if raw else 0


def grid_capacity_kw() -> float:
    raw = os.environ.get("GRID_CAPACITY_KW", "").strip()
    return float(raw) if raw else DEFAULT_GRID_CAPACITY_KW


def mean_power_kw() -> float:
    total_weight = sum(weight for _, weight in POWER_MIX)
    return sum(kw * weight for kw, weight in POWER_MIX) / total_weight
