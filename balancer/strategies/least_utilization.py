"""least-utilization: live loads from Redis at decision time; the rule itself (pick + atomic
reservation) is in grid/lua/choose.lua, so concurrent decisions don't all pick the same one."""

from __future__ import annotations

from balancer.ranking import GridView
from balancer.strategies.base import Choice

NAME = "least-utilization"


class LeastUtilization:
    name = NAME

    def order(self, view: GridView) -> Choice:
        if not view.ranked:
            return Choice([], "no healthy substation has room (live)")
        return Choice(list(view.ranked), "most power for the car, then lowest live utilisation")
