"""After the upstream answers: count where requests went, track consecutive failures for
passive ejection and push the decision record: one pipeline. (Reservations are settled by
the grid scripts only: the admission, or the balancer giving up on it.)"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from balancer import keys
from balancer.health import eject
from balancer.upstream import ERROR, Attempt


@dataclass
class Decision:
    time: str
    vehicle_id: str
    power_kw: float
    strategy: str
    reason: str
    # admitted | refused (nobody had room) | error (nobody answered) | queued
    outcome: str = "refused"
    substation: str | None = None
    allocated_kw: float | None = None
    utilization_before: float | None = None
    utilization_after: float | None = None
    session_id: str | None = None
    ends_at: str | None = None
    tried: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # "name: outcome (detail)"
    decision_ms: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def finish(client: redis.Redis, attempts: list[Attempt], decision: Decision,
           eject_after: int) -> None:
    pipe = client.pipeline(transaction=False)
    failed: list[str] = []
    for attempt in attempts:
        pipe.hincrby(keys.ROUTED, f"{attempt.substation}|{attempt.outcome}", 1)
        if attempt.outcome == ERROR:
            pipe.hincrby(keys.FAILS, attempt.substation, 1)
            failed.append(attempt.substation)
        else:
            pipe.hdel(keys.FAILS, attempt.substation)  # it answered: the streak is over
    pipe.lpush(keys.RECENT, decision.to_json())
    pipe.ltrim(keys.RECENT, 0, keys.RECENT_MAX - 1)
    results = pipe.execute()
    for i, attempt in enumerate(attempts):
        streak = results[2 * i + 1]  # the HINCRBY of FAILS for this attempt
        if attempt.outcome == ERROR and int(streak) >= eject_after:
            eject(client, attempt.substation, f"{streak} consecutive failures ({attempt.detail})")


def recent(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(item) for item in client.lrange(keys.RECENT, 0, keys.RECENT_MAX - 1)]
