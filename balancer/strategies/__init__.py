"""Routing strategies, one module each, all behind base.Strategy."""

from __future__ import annotations

import random

from balancer.strategies import least_utilization, p2c, polled, round_robin
from balancer.strategies.base import PolledSource, Strategy

DEFAULT = least_utilization.NAME
NAMES = (least_utilization.NAME, polled.NAME, p2c.NAME, round_robin.NAME)
RESERVING = least_utilization.NAME  # the strategy whose pick choose.lua reserves atomically


def build(source: PolledSource, rng: random.Random | None = None) -> dict[str, Strategy]:
    return {
        least_utilization.NAME: least_utilization.LeastUtilization(),
        polled.NAME: polled.Polled(source),
        p2c.NAME: p2c.PowerOfTwo(source, rng),
        round_robin.NAME: round_robin.RoundRobin(),
    }
