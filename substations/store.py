"""A substation's sessions in Redis: every state change is one atomic Lua call (lua/*.lua)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from substations.keys import substation_keys
from substations.scripts import substation_script
from substations.validation import ChargeRequest
from substations.wire import new_session_id

COUNTERS = ("admitted", "refused", "late", "expired", "deleted")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    late: bool  # dropped: past the caller's deadline
    session_id: str | None
    end_ms: int | None
    retry_after_s: int | None  # refused: seconds until it would fit; None: it never fits
    load_w: int
    capacity_w: int


@dataclass(frozen=True)
class Session:
    session_id: str
    vehicle_id: str
    power_w: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    load_w: int
    capacity_w: int
    active: int
    counters: dict[str, int]
    sessions: list[Session] = field(default_factory=list)


class SessionStore:
    def __init__(self, client: redis.Redis, name: str, capacity_w: int):
        self.client, self.name, self.capacity_w = client, name, capacity_w
        self.keys = substation_keys(name).as_list()
        self._admit = substation_script(client, "admit")
        self._end = substation_script(client, "end")
        self._status = substation_script(client, "status")

    def publish_capacity(self) -> None:
        self.client.set(substation_keys(self.name).capacity, self.capacity_w)

    def admit(self, req: ChargeRequest, default_duration_s: float, reservation: str = "",
              deadline_ms: int = 0) -> Admission:
        session_id = new_session_id(self.name)
        duration_s = req.duration_s if req.duration_s is not None else default_duration_s
        ok, value, load, cap = self._admit(
            keys=self.keys,
            args=[session_id, req.power_w, max(1, round(duration_s * 1000)), req.vehicle_id,
                  self.capacity_w, reservation, deadline_ms])
        if ok == 1:
            return Admission(True, False, session_id, int(value), None, int(load), int(cap))
        retry = int(value) if int(value) > 0 else None
        return Admission(False, ok == -1, None, None, retry, int(load), int(cap))

    def end(self, session_id: str) -> tuple[int, int] | None:
        """(power freed, load after) in W when it was active; None when unknown or over."""
        ended, power, load = self._end(keys=self.keys, args=[session_id, self.capacity_w])
        return (int(power), int(load)) if ended else None

    def snapshot(self, max_sessions: int = 0) -> Snapshot:
        raw = self._status(keys=self.keys, args=[self.capacity_w, max_sessions])
        now, load, cap, active, *counts = (int(v) for v in raw[:9])
        sessions = []
        for i in range(9, len(raw), 3):
            power, start, vehicle = str(raw[i + 1]).split(":", 2)
            sessions.append(Session(raw[i], vehicle, int(power), int(start), int(raw[i + 2])))
        counters = dict(zip(COUNTERS, counts, strict=True))
        return Snapshot(now, load, cap, active, counters, sessions)
