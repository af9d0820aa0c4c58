"""GET /status of the balancer (SPEC section 3)."""

from __future__ import annotations

from typing import Any

import redis

from balancer import keys
from balancer.journal import recent
from balancer.queue import CarQueue
from balancer.ranking import RankAndReserve
from grid.wire import iso_from_ms, kw


def build_status(client: redis.Redis, ranker: RankAndReserve, queue: CarQueue,
                 urls: dict[str, str]) -> dict[str, Any]:
    view = ranker.read()
    routed = client.hgetall(keys.ROUTED)
    substations = []
    for name, sub in view.subs.items():
        counts = {o: int(routed.get(f"{name}|{o}", 0)) for o in ("admitted", "refused", "error")}
        substations.append({
            "name": name, "url": urls[name], "healthy": sub.healthy,
            "load_kw": kw(sub.load_w), "allocated_kw": kw(sub.load_w),
            "minimum_kw": kw(sub.min_sum_w), "capacity_kw": kw(sub.capacity_w),
            "utilization": round(sub.utilization, 6), "active_sessions": sub.active,
            "reserved_kw": kw(sub.reserved_w),
            "routed_total": sum(counts.values()), "routed": counts,
        })
    length, waiting = queue.waiting()
    cars = [{"session_id": w.queue_id, "position": w.position,
             "vehicle_id": w.request.get("vehicle_id"), "power_kw": w.request.get("power_kw"),
             "min_power_kw": w.request.get("min_power_kw"),
             "queued_at": iso_from_ms(w.enqueued_ms)} for w in waiting]
    return {"strategy": view.strategy, "substations": substations,
            "queue": {"length": length, "waiting": cars}, "recent": recent(client)}
