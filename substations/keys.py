"""Redis key layout of the grid, shared by substations and the balancer (one grid Redis).

Per substation `<name>`:
  grid:sub:<name>:sessions  ZSET  session_id -> end_ms (Redis time)
  grid:sub:<name>:info      HASH  session_id -> "power_w:start_ms:vehicle_id"
  grid:sub:<name>:load_w    STRING  sum of power_w over the ZSET
  grid:sub:<name>:capacity_w STRING written by the substation, read by the balancer
  grid:sub:<name>:stats     HASH  admitted, refused, late, expired, deleted counters
  grid:sub:<name>:reserved  ZSET  "<reservation id>:<watts>" -> expiry ms: balancers'
                            in-flight least-utilization picks; admit.lua removes the one it
                            settles in the same step, so load + reserved never counts it twice
One hash for all sessions' data (not a key per session) keeps every key a script touches
declared in KEYS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubstationKeys:
    sessions: str
    info: str
    load: str
    capacity: str
    stats: str
    reserved: str

    def as_list(self) -> list[str]:
        """The order every grid Lua script expects (see substations/lua/lib.lua)."""
        return [self.sessions, self.info, self.load, self.capacity, self.stats, self.reserved]


def substation_keys(name: str) -> SubstationKeys:
    base = f"grid:sub:{name}"
    return SubstationKeys(f"{base}:sessions", f"{base}:info", f"{base}:load_w",
                          f"{base}:capacity_w", f"{base}:stats", f"{base}:reserved")
