"""A substation's sessions in Redis: every state change is one atomic Lua call (grid/lua/*.lua).

Used by the substation service (admit, end, status, reaper) and by balancers (read a session,
give up on an admission they stopped waiting for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from grid.keys import substation_keys
from grid.scripts import grid_scripts
from grid.validation import ChargeRequest
from grid.wire import new_session_id

COUNTERS = ("admitted", "refused", "late", "expired", "charged", "deleted", "abandoned")
ADMITTED, ALREADY, REFUSED, LATE = 1, 2, 0, -1


@dataclass(frozen=True)
class Admission:
    admitted: bool
    late: bool  # dropped: past the caller's deadline, or an id already ended
    session_id: str | None
    end_ms: int | None
    retry_after_s: int | None  # refused: seconds until it would fit; None: it never fits
    load_w: int
    capacity_w: int
    allocated_w: int = 0


@dataclass(frozen=True)
class Session:
    session_id: str
    vehicle_id: str
    power_w: int  # max
    min_w: int
    allocated_w: int
    start_ms: int
    end_ms: int
    energy_wms: int  # delivered so far
    target_wms: int  # 0: none


@dataclass(frozen=True)
class SessionState:
    session_id: str
    state: str  # charging | ended | unknown
    now_ms: int
    session: Session | None = None  # when charging
    energy_wms: int = 0
    ended_ms: int | None = None
    reason: str | None = None  # expired | charged | deleted | abandoned
    power_w: int = 0
    vehicle_id: str = ""


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    load_w: int
    capacity_w: int
    active: int
    min_sum_w: int
    max_sum_w: int
    energy_wms: int  # delivered by this substation, ended and charging sessions
    peak_w: int  # audit: the highest sum of allocations ever written
    over: int  # audit: steps that ended above capacity (always 0)
    counters: dict[str, int]
    sessions: list[Session] = field(default_factory=list)


def _session(session_id: str, info: str, end_ms: int, energy_wms: int) -> Session:
    mx, mn, alloc, start, _last, _energy, target, _deadline, vehicle = info.split(":", 8)
    return Session(session_id, vehicle, int(mx), int(mn), int(alloc), int(start), int(end_ms),
                   int(energy_wms), int(target))


class SessionStore:
    def __init__(self, client: redis.Redis, name: str, capacity_w: int = 0):
        self.client, self.name, self.capacity_w = client, name, capacity_w
        self.keys = substation_keys(name).as_list()
        self._scripts = grid_scripts(client, "admit", "end", "status", "session", "reap")

    def publish_capacity(self) -> None:
        self.client.set(substation_keys(self.name).capacity, self.capacity_w)

    def admit(self, req: ChargeRequest, default_duration_s: float, reservation: str = "",
              deadline_ms: int = 0, session_id: str | None = None) -> Admission:
        session_id = session_id or new_session_id(self.name)
        duration_s = req.duration_s if req.duration_s is not None else default_duration_s
        ok, value, load, cap, alloc = self._scripts["admit"](
            keys=self.keys,
            args=[session_id, req.power_w, req.floor_w, max(1, round(duration_s * 1000)),
                  req.vehicle_id, self.capacity_w, reservation, deadline_ms, req.energy_wms])
        if ok in (ADMITTED, ALREADY):
            return Admission(True, False, session_id, int(value), None, int(load), int(cap),
                             int(alloc))
        retry = int(value) if int(value) > 0 else None
        return Admission(False, ok == LATE, None, None, retry, int(load), int(cap))

    def end(self, session_id: str, reason: str = "deleted",
            reservation: str = "") -> tuple[int, int, int] | None:
        """(allocation it had, load after, energy delivered W*ms) when it was charging;
        None when unknown or over. reason 'abandoned' also bars a later admission of the id."""
        ended, alloc, load, energy = self._scripts["end"](
            keys=self.keys, args=[session_id, reason, reservation])
        return (int(alloc), int(load), int(energy)) if ended else None

    def reap(self) -> int:
        """End the sessions that are due; returns how many."""
        return int(self._scripts["reap"](keys=self.keys, args=[self.capacity_w]))

    def session(self, session_id: str) -> SessionState:
        state, record, end_ms, energy, now = self._scripts["session"](
            keys=self.keys, args=[session_id])
        if state == "charging":
            sess = _session(session_id, record, int(end_ms), int(energy))
            return SessionState(session_id, state, int(now), sess, sess.energy_wms,
                                power_w=sess.power_w, vehicle_id=sess.vehicle_id)
        if state == "ended":
            energy_wms, ended_ms, reason, power, vehicle = record.split(":", 4)
            return SessionState(session_id, state, int(now), None, int(energy_wms),
                                int(ended_ms), reason, int(power), vehicle)
        return SessionState(session_id, "unknown", int(now))

    def snapshot(self, max_sessions: int = 0) -> Snapshot:
        raw = self._scripts["status"](keys=self.keys, args=[self.capacity_w, max_sessions])
        head = [int(v) for v in raw[:9 + len(COUNTERS)]]
        now, load, cap, active, mins, maxs, energy, peak, over = head[:9]
        counters = dict(zip(COUNTERS, head[9:], strict=True))
        rest = raw[9 + len(COUNTERS):]
        sessions = [_session(rest[i], rest[i + 1], int(rest[i + 2]), int(rest[i + 3]))
                    for i in range(0, len(rest), 4)]
        return Snapshot(now, load, cap, active, mins, maxs, energy, peak, over, counters,
                        sessions)
