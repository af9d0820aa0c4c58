"""One POST /charge: decide (one Redis call), try candidates in order (one try per
substation, per-try timeout), then journal the outcome (one Redis pipeline)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from balancer.journal import Decision, finish
from balancer.metrics import DECISION_SECONDS, RETRIES, UNROUTABLE
from balancer.strategies import DEFAULT
from balancer.strategies.base import Strategy
from balancer.upstream import ADMITTED, ERROR, REFUSED, Attempt, Upstream
from balancer.view import Decider, GridView
from substations.validation import ChargeRequest
from substations.wire import iso_from_ms, kw

NO_ROOM = "no substation has room"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    journal: Callable[[], None] = lambda: None  # record the decision; safe to call late


class Router:
    def __init__(self, client: redis.Redis, decider: Decider, strategies: dict[str, Strategy],
                 upstream: Upstream, eject_after: int):
        self.client, self.decider, self.strategies = client, decider, strategies
        self.upstream, self.eject_after = upstream, eject_after
        self.timeout_s = upstream.timeout_s

    def route(self, req: ChargeRequest) -> Routed:
        started = time.perf_counter()
        view = self.decider.decide(req.power_w)
        strategy = self.strategies.get(view.strategy) or self.strategies[DEFAULT]
        choice = strategy.order(view)
        payload = req.payload()
        attempts: list[Attempt] = []
        reserved_on, member = view.reservation or ("", "")
        decided = time.perf_counter()
        for name in choice.candidates:
            # In Redis time: the decision's timestamp plus what has elapsed here since.
            deadline = view.now_ms + round((time.perf_counter() - decided + self.timeout_s) * 1000)
            attempt = self.upstream.charge(name, payload, deadline,
                                           member if name == reserved_on else "")
            attempts.append(attempt)
            if attempt.outcome == ADMITTED:
                break
        if len(attempts) > 1:
            RETRIES.inc(len(attempts) - 1)
        decision = Decision(time=iso_from_ms(view.now_ms), vehicle_id=req.vehicle_id,
                            power_kw=kw(req.power_w), strategy=strategy.name,
                            reason=_reason(choice.reason, attempts),
                            tried=[a.substation for a in attempts],
                            attempts=[_describe(a) for a in attempts])
        result = self._result(view, attempts, decision)
        elapsed = time.perf_counter() - started
        decision.decision_ms = round(elapsed * 1000, 3)
        DECISION_SECONDS.labels(strategy.name).observe(elapsed)

        def journal() -> None:
            try:
                finish(self.client, view, attempts, decision, self.eject_after)
            except redis.exceptions.RedisError as exc:
                log.warning("could not journal a decision: %s", exc)

        return replace(result, journal=journal)

    def _result(self, view: GridView, attempts: list[Attempt], decision: Decision) -> Routed:
        last = attempts[-1] if attempts else None
        if last is not None and last.outcome == ADMITTED:
            body = last.body or {}
            decision.outcome = ADMITTED
            decision.substation = last.substation
            decision.utilization_before = round(view.subs[last.substation].utilization, 6)
            decision.utilization_after = body.get("utilization")
            decision.session_id, decision.ends_at = body.get("session_id"), body.get("ends_at")
            return Routed(200, body, {})
        UNROUTABLE.inc()
        decision.outcome = REFUSED if any(a.outcome == REFUSED for a in attempts) or \
            not attempts else ERROR
        retry = retry_after(view, attempts)
        healthy = view.healthy()
        detail = "no healthy substation" if not healthy else decision.reason
        body = {"error": NO_ROOM, "retry_after": retry, "detail": detail,
                "tried": decision.tried}
        return Routed(503, body, {"Retry-After": str(retry)})


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
