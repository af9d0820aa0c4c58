"""The one interface every routing strategy implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from balancer.ranking import GridView


@dataclass(frozen=True)
class Choice:
    candidates: list[str]  # substations to try, in order; the first is the pick
    reason: str  # why the first one, for the decision record


class Strategy(Protocol):
    name: str

    def order(self, view: GridView) -> Choice:
        """Candidates for one request, given the live view (health, loads) fetched for it."""
        ...


class PolledSource(Protocol):
    """Where polled/p2c read their (possibly stale) view: balancer.poller.Poller."""

    def snapshot(self) -> tuple[dict[str, float], float | None]:
        """({name: utilisation}, age of the view in seconds or None if never polled)."""
        ...


def by_polled_utilization(names: list[str], utils: dict[str, float]) -> list[str]:
    """Lowest polled utilisation first, ties by name; never-polled counts as idle."""
    return sorted(names, key=lambda name: (utils.get(name, 0.0), name))


def describe_age(age: float | None) -> str:
    return "never polled" if age is None else f"view {age:.1f} s old"
