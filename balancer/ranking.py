"""The grid as the balancer sees it at decision time: one Lua call (grid/lua/choose.lua)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from balancer import keys
from grid.keys import QUEUE, substation_keys
from grid.scripts import grid_scripts


@dataclass(frozen=True)
class SubstationView:
    name: str
    healthy: bool
    load_w: int  # sum of allocations
    reserved_w: int  # minimums of in-flight reservations
    capacity_w: int
    active: int
    retry_after_s: int  # for the request's minimum: 0 fits now, -1 never fits
    share_w: int = 0  # what the request would be allocated there (0: its minimum won't fit)
    min_sum_w: int = 0

    @property
    def utilization(self) -> float:
        return self.load_w / self.capacity_w if self.capacity_w else 0.0


@dataclass(frozen=True)
class GridView:
    strategy: str
    rr: int
    now_ms: int
    ranked: list[str]  # least-utilization order over healthy substations with room
    subs: dict[str, SubstationView]
    reservation: tuple[str, str] | None = None  # (substation, member) of the reserved pick
    rid: str = ""  # 16 hex: this request's id (its session ids are "<substation>.<rid>")
    queue_len: int = 0

    def healthy(self) -> list[str]:
        return [name for name, sub in self.subs.items() if sub.healthy]


class RankAndReserve:
    """Runs choose.lua: reaps, reads loads/health/strategy/queue, ranks the substations for
    one request and, under the reserving strategy, reserves on the best one atomically."""

    def __init__(self, client: redis.Redis, names: list[str], default_strategy: str,
                 reserving_strategy: str, reservation_ttl_ms: int = 5000):
        self.names = sorted(names)
        self.ttl_ms = reservation_ttl_ms
        self.default, self.reserving = default_strategy, reserving_strategy
        self.keys = [keys.STRATEGY, keys.HEALTH, keys.RR, QUEUE]
        for name in self.names:
            self.keys += substation_keys(name).as_list()
        self._choose = grid_scripts(client, "choose")["choose"]

    def rank_and_reserve(self, min_w: int, max_w: int, rid: str | None = None,
                         wait: bool = False) -> GridView:
        return self._run(min_w, max_w, "decide", rid, wait)

    def read(self) -> GridView:
        """The view for /status: no reservation, round-robin counter unchanged."""
        return self._run(0, 0, "peek", None, False)

    def _run(self, min_w: int, max_w: int, mode: str, rid: str | None,
             wait: bool) -> GridView:
        rid = rid or secrets.token_hex(8)
        raw = self._choose(keys=self.keys, args=[
            self.default, self.reserving, min_w, max_w, rid, self.ttl_ms, mode,
            "1" if wait else "0", *self.names])
        strategy, rr, now, reserved_on = raw[0], int(raw[1]), int(raw[2]), raw[3]
        queue_len, n_ranked = int(raw[4]), int(raw[5])
        ranked = list(raw[6:6 + n_ranked])
        subs = {}
        rest = raw[6 + n_ranked:]
        for i in range(0, len(rest), 9):
            name, healthy, load, res, cap, active, retry, share, mins = rest[i:i + 9]
            subs[name] = SubstationView(name, int(healthy) == 1, int(load), int(res), int(cap),
                                        int(active), int(retry), int(share), int(mins))
        reservation = (reserved_on, f"{rid}:{min_w}:{max_w}") if reserved_on else None
        return GridView(strategy, rr, now, ranked, subs, reservation, rid, queue_len)
