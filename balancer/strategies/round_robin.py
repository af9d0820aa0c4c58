"""round-robin over healthy substations; the counter is a grid-wide Redis INCR (done in
choose.lua) so workers and balancers don't all start at the same substation."""

from __future__ import annotations

from balancer.ranking import GridView
from balancer.strategies.base import Choice

NAME = "round-robin"


def rotate(names: list[str], counter: int) -> list[str]:
    ordered = sorted(names)
    if not ordered:
        return []
    start = counter % len(ordered)
    return ordered[start:] + ordered[:start]


class RoundRobin:
    name = NAME

    def order(self, view: GridView) -> Choice:
        return Choice(rotate(view.healthy(), view.rr), "next in rotation")
