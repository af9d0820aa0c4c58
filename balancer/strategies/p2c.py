"""p2c: power of two choices over the polled view: sample two distinct healthy substations,
try the less utilised first, then the other, then the rest (lowest polled first)."""

from __future__ import annotations

import random

from balancer.ranking import GridView
from balancer.strategies.base import Choice, PolledSource, by_polled_utilization, describe_age

NAME = "p2c"


def p2c_order(names: list[str], utils: dict[str, float], rng: random.Random) -> list[str]:
    if len(names) < 2:
        return list(names)
    pair = by_polled_utilization(rng.sample(sorted(names), 2), utils)
    rest = by_polled_utilization([n for n in names if n not in pair], utils)
    return pair + rest


class PowerOfTwo:
    name = NAME

    def __init__(self, source: PolledSource, rng: random.Random | None = None):
        self.source = source
        self.rng = rng or random.Random()

    def order(self, view: GridView) -> Choice:
        utils, age = self.source.snapshot()
        candidates = p2c_order(view.healthy(), utils, self.rng)
        if len(candidates) >= 2:
            reason = f"better of {candidates[0]} and {candidates[1]} ({describe_age(age)})"
        else:
            reason = "only one healthy substation"
        return Choice(candidates, reason)
