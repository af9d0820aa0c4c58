"""Redis key layout of the grid (one grid Redis for every substation and balancer).

Per substation `<name>` (the order every grid Lua script expects; see grid/lua/lib.lua):
  grid:sub:<name>:sessions    ZSET  session_id -> end ms (deadline, or energy target reached)
  grid:sub:<name>:info        HASH  session_id ->
                              "max_w:min_w:alloc_w:start:last:energy:target:deadline:vehicle"
  grid:sub:<name>:load_w      STRING sum of allocations
  grid:sub:<name>:capacity_w  STRING written by the substation, read by balancers
  grid:sub:<name>:stats       HASH  counters, delivered energy of ended sessions, audit peak_w
  grid:sub:<name>:reserved    ZSET  "<rid>:<min_w>:<max_w>" -> expiry ms: balancers' in-flight
                              picks; the admission (or the balancer giving up) settles it
  grid:sub:<name>:ended       HASH  session_id -> "energy_wms:ended_ms:reason:max_w:vehicle"
  grid:sub:<name>:ended_order ZSET  session_id -> ended ms (keeps the newest KEEP_ENDED)
One hash for all sessions' data (not a key per session) keeps every key a script touches
declared in KEYS.

The queue of waiting cars (balancers):
  grid:queue         LIST  queue ids, oldest first
  grid:queue:req     HASH  queue id -> "<enqueued ms>:<request json>"
  grid:queue:placed  HASH  queue id -> substation it was admitted on ('' cancelled)
  grid:queue:lock    STRING the dispatcher lease (one dispatcher across all balancers)
Channel grid:room: published when power frees up or a car joins the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUE = "grid:queue"
QUEUE_REQUESTS = "grid:queue:req"
QUEUE_PLACED = "grid:queue:placed"
QUEUE_LOCK = "grid:queue:lock"
QUEUE_KEYS = [QUEUE, QUEUE_REQUESTS, QUEUE_PLACED]
ROOM_CHANNEL = "grid:room"  # the same name as lib.lua's ROOM_CHANNEL


@dataclass(frozen=True)
class SubstationKeys:
    sessions: str
    info: str
    load: str
    capacity: str
    stats: str
    reserved: str
    ended: str
    ended_order: str

    def as_list(self) -> list[str]:
        """The order every grid Lua script expects (grid/lua/lib.lua)."""
        return [self.sessions, self.info, self.load, self.capacity, self.stats, self.reserved,
                self.ended, self.ended_order]


def substation_keys(name: str) -> SubstationKeys:
    base = f"grid:sub:{name}"
    return SubstationKeys(*(f"{base}:{part}" for part in (
        "sessions", "info", "load_w", "capacity_w", "stats", "reserved", "ended",
        "ended_order")))
