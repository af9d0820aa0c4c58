"""GET /status of the balancer (SPEC section 3)."""

from __future__ import annotations

from typing import Any

import redis

from balancer import keys
from balancer.journal import recent
from balancer.view import Decider
from substations.wire import kw


def build_status(client: redis.Redis, decider: Decider, urls: dict[str, str]) -> dict[str, Any]:
    view = decider.peek()
    routed = client.hgetall(keys.ROUTED)
    substations = []
    for name, sub in view.subs.items():
        counts = {o: int(routed.get(f"{name}|{o}", 0)) for o in ("admitted", "refused", "error")}
        substations.append({
            "name": name, "url": urls[name], "healthy": sub.healthy,
            "load_kw": kw(sub.load_w), "capacity_kw": kw(sub.capacity_w),
            "utilization": round(sub.utilization, 6), "active_sessions": sub.active,
            "reserved_kw": kw(sub.reserved_w),
            "routed_total": sum(counts.values()), "routed": counts,
        })
    return {"strategy": view.strategy, "substations": substations, "recent": recent(client)}
