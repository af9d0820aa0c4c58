"""What an EV driver asks for: a charger power level and how long the session lasts."""

from __future__ import annotations

import random

if __package__:
    from . import config
else:  # loaded as a top-level module next to the locustfile (compose: /mnt/locust)
    import config

SESSION_FRACTION = (0.10, 0.25)  # a charging session lasts this share of the run time


def pick_power_kw(rng: random.Random | None = None) -> float:
    """A power level from config.POWER_MIX, weighted by how common that charger is."""
    levels, weights = zip(*config.POWER_MIX, strict=True)
    return (rng or random).choices(levels, weights=weights)[0]


def session_duration_s(run_time_s: float, rng: random.Random | None = None) -> float:
    """Seconds of charging: a share of the run, so short runs still see sessions end."""
    low, high = SESSION_FRACTION
    return round(max(1.0, (rng or random).uniform(low, high) * run_time_s), 1)


def is_grid_refusal(status: int, retry_after: str | None, body: object) -> bool:
    """A 503 + Retry-After saying no substation can take the car: the grid protecting itself.

    A 503 because the balancer's own Redis is down is an outage, not a refusal.
    """
    if status != 503 or not retry_after or not isinstance(body, dict):
        return False
    error = body.get("error")
    return isinstance(error, str) and "redis" not in error.lower()
