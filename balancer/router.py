"""One POST /charge: rank (one Redis call), try candidates in order (one try per substation,
per-try timeout, each try naming its session id), give up cleanly on a try that did not
answer, queue the car if it asked to wait, then journal the outcome (one Redis pipeline)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from balancer.journal import Decision, finish
from balancer.metrics import DECISION_SECONDS, RETRIES, UNROUTABLE
from balancer.queue import CarQueue
from balancer.ranking import GridView, RankAndReserve
from balancer.strategies import DEFAULT
from balancer.strategies.base import Strategy
from balancer.upstream import ADMITTED, ERROR, REFUSED, Attempt, Upstream
from grid.sessions import SessionStore
from grid.validation import ChargeRequest
from grid.wire import iso_from_ms, kw, new_session_id

NO_ROOM = "no substation has room"
QUEUED = "queued"
# The substation must have run the admission this long before the try's timeout, so its
# answer has time to come back; later, its script refuses (grid/lua/admit.lua).
REPLY_MARGIN_S = 0.1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    journal: Callable[[], None] = lambda: None  # record the decision; safe to call late


class Router:
    def __init__(self, client: redis.Redis, ranker: RankAndReserve,
                 strategies: dict[str, Strategy], upstream: Upstream, eject_after: int,
                 queue: CarQueue):
        self.client, self.ranker, self.strategies = client, ranker, strategies
        self.upstream, self.eject_after, self.queue = upstream, eject_after, queue
        self.timeout_s = upstream.timeout_s
        self.margin_s = min(REPLY_MARGIN_S, self.timeout_s / 4)
        self.stores = {name: SessionStore(client, name) for name in upstream.urls}

    def route(self, req: ChargeRequest, body: bytes, rid: str | None = None,
              may_queue: bool = True) -> Routed:
        """Place one car; `rid` (16 hex) names its sessions (a queued car keeps its own)."""
        started = time.perf_counter()
        wait = req.wait and may_queue
        view = self.ranker.rank_and_reserve(req.floor_w, req.power_w, rid, wait)
        strategy = self.strategies.get(view.strategy) or self.strategies[DEFAULT]
        choice = strategy.order(view)
        if wait and view.queue_len > 0:  # others wait already: first come, first served
            choice = replace(choice, candidates=[], reason="cars are waiting: joined the queue")
        attempts: list[Attempt] = []
        reserved_on, member = view.reservation or ("", "")
        decided = time.perf_counter()
        for name in choice.candidates:
            session_id = new_session_id(name, view.rid)
            # In Redis time: the decision's timestamp plus what has elapsed here since.
            spent = time.perf_counter() - decided
            deadline = view.now_ms + round((spent + self.timeout_s - self.margin_s) * 1000)
            reservation = member if name == reserved_on else ""
            attempt = self.upstream.charge(name, body, session_id, deadline, reservation)
            attempts.append(attempt)
            if attempt.outcome == ADMITTED:
                break
            if attempt.outcome == ERROR:
                self._give_up(name, session_id, reservation)
        if len(attempts) > 1:
            RETRIES.inc(len(attempts) - 1)
        decision = Decision(time=iso_from_ms(view.now_ms), vehicle_id=req.vehicle_id,
                            power_kw=kw(req.power_w), strategy=strategy.name,
                            reason=_reason(choice.reason, attempts),
                            tried=[a.substation for a in attempts],
                            attempts=[_describe(a) for a in attempts])
        result = self._result(view, attempts, decision, req, body, wait)
        elapsed = time.perf_counter() - started
        decision.decision_ms = round(elapsed * 1000, 3)
        DECISION_SECONDS.labels(strategy.name).observe(elapsed)

        def journal() -> None:
            try:
                finish(self.client, attempts, decision, self.eject_after)
            except redis.exceptions.RedisError as exc:
                log.warning("could not journal a decision: %s", exc)

        return replace(result, journal=journal)

    def _give_up(self, name: str, session_id: str, reservation: str) -> None:
        """A try that timed out or failed may still have admitted (or admit later): end that
        session id in the grid Redis, which also bars its admission from now on."""
        try:
            if self.stores[name].end(session_id, "abandoned", reservation) is not None:
                log.warning("ended session %s admitted after its try was given up", session_id)
        except redis.RedisError as exc:  # its deadline still bars a late admission
            log.warning("could not give up %s: %s", session_id, exc)

    def _result(self, view: GridView, attempts: list[Attempt], decision: Decision,
                req: ChargeRequest, body: bytes, wait: bool) -> Routed:
        last = attempts[-1] if attempts else None
        if last is not None and last.outcome == ADMITTED:
            answer = last.body or {}
            decision.outcome = ADMITTED
            decision.substation = last.substation
            decision.allocated_kw = answer.get("allocated_kw")
            decision.utilization_before = round(view.subs[last.substation].utilization, 6)
            decision.utilization_after = answer.get("utilization")
            decision.session_id, decision.ends_at = answer.get("session_id"), answer.get("ends_at")
            return Routed(200, answer, {})
        # A car whose minimum exceeds every substation's capacity would block the queue forever.
        if wait and any(s.capacity_w >= req.floor_w for s in view.subs.values()):
            queue_id, position = self.queue.join(view.rid, body)
            decision.outcome, decision.session_id = QUEUED, queue_id
            answer = {"session_id": queue_id, "state": QUEUED, "position": position,
                      "vehicle_id": req.vehicle_id}
            return Routed(202, answer, {"Location": f"/sessions/{queue_id}"})
        UNROUTABLE.inc()
        decision.outcome = REFUSED if any(a.outcome == REFUSED for a in attempts) or \
            not attempts else ERROR
        retry = retry_after(view, attempts)
        healthy = view.healthy()
        detail = "no healthy substation" if not healthy else decision.reason
        answer = {"error": NO_ROOM, "retry_after": retry, "detail": detail,
                  "tried": decision.tried}
        return Routed(503, answer, {"Retry-After": str(retry)})


def retry_after(view: GridView, attempts: list[Attempt]) -> int:
    """Soonest any healthy substation could take the request: the substations' own hints
    (refusals, or the live view for ones not tried), else 1."""
    tried = {a.substation for a in attempts}
    hints = [a.retry_after_s for a in attempts if a.outcome == REFUSED and a.retry_after_s]
    hints += [s.retry_after_s for s in view.subs.values()
              if s.healthy and s.name not in tried and s.retry_after_s > 0]
    return max(1, min(hints)) if hints else 1


def _describe(attempt: Attempt) -> str:
    detail = f" ({attempt.detail})" if attempt.detail and attempt.outcome != ADMITTED else ""
    return f"{attempt.substation}: {attempt.outcome}{detail}"


def _reason(base: str, attempts: list[Attempt]) -> str:
    skipped = [f"{a.substation} {a.detail or a.outcome}" for a in attempts
               if a.outcome in (REFUSED, ERROR)]
    return base if not skipped else f"{base}; skipped {', '.join(skipped)}"
