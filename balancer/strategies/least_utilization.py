"""least-utilization: live loads from Redis at decision time; the rule itself (pick + atomic
reservation) is in balancer/lua/choose.lua, so concurrent decisions don't all pick the same one."""

from __future__ import annotations

from balancer.strategies.base import Choice
from balancer.view import GridView

NAME = "least-utilization"


class LeastUtilization:
    name = NAME

    def order(self, view: GridView) -> Choice:
        if not view.ranked:
            return Choice([], "no healthy substation has room (live)")
        return Choice(list(view.ranked), "lowest live utilisation with room")
