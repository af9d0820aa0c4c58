"""polled: the classic design. Rank by the utilisation last scraped from each /metrics;
between polls every decision sees the same minimum, which is what causes herding."""

from __future__ import annotations

from balancer.ranking import GridView
from balancer.strategies.base import Choice, PolledSource, by_polled_utilization, describe_age

NAME = "polled"


class Polled:
    name = NAME

    def __init__(self, source: PolledSource):
        self.source = source

    def order(self, view: GridView) -> Choice:
        utils, age = self.source.snapshot()
        return Choice(by_polled_utilization(view.healthy(), utils),
                      f"lowest polled utilisation ({describe_age(age)})")
