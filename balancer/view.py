"""The grid as the balancer sees it at decision time: one Lua call (lua/choose.lua)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import redis

from balancer import keys
from substations.keys import substation_keys
from substations.scripts import grid_script

CHOOSE_LUA = Path(__file__).parent / "lua" / "choose.lua"


@dataclass(frozen=True)
class SubstationView:
    name: str
    healthy: bool
    load_w: int
    reserved_w: int
    capacity_w: int
    active: int
    retry_after_s: int  # for the request's power: 0 fits now, -1 never fits

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

    def healthy(self) -> list[str]:
        return [name for name, sub in self.subs.items() if sub.healthy]


class Decider:
    """Wraps choose.lua: reaps, reads loads/health/strategy and, for the reserving
    strategy, atomically picks and reserves."""

    def __init__(self, client: redis.Redis, names: list[str], default_strategy: str,
                 reserving_strategy: str, reservation_ttl_ms: int = 5000):
        self.names = sorted(names)
        self.ttl_ms = reservation_ttl_ms
        self.default, self.reserving = default_strategy, reserving_strategy
        self.keys = [keys.STRATEGY, keys.HEALTH, keys.RR]
        for name in self.names:
            self.keys += substation_keys(name).as_list()
        self._choose = grid_script(client, CHOOSE_LUA)

    def decide(self, power_w: int) -> GridView:
        return self._run(power_w, "decide")

    def peek(self) -> GridView:
        """The view for /status: no reservation, round-robin counter unchanged."""
        return self._run(0, "peek")

    def _run(self, power_w: int, mode: str) -> GridView:
        rid = secrets.token_hex(8)
        raw = self._choose(keys=self.keys, args=[
            self.default, self.reserving, power_w, rid, self.ttl_ms,
            mode, *self.names])
        strategy, rr, now, reserved_on, n_ranked = raw[0], int(raw[1]), int(raw[2]), raw[3], \
            int(raw[4])
        ranked = list(raw[5:5 + n_ranked])
        subs = {}
        rest = raw[5 + n_ranked:]
        for i in range(0, len(rest), 7):
            name, healthy, load, res, cap, active, retry = rest[i:i + 7]
            subs[name] = SubstationView(name, int(healthy) == 1, int(load), int(res), int(cap),
                                        int(active), int(retry))
        reservation = (reserved_on, f"{rid}:{power_w}") if reserved_on else None
        return GridView(strategy, rr, now, ranked, subs, reservation)
