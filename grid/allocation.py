"""Max-min fair sharing of a substation's capacity: the pure reference of lib.lua's allocate().

Water-filling in integer watts: find the highest level L such that giving every session
clamp(L, min, max) fits in the capacity; the few watts left over (fewer than the sessions
still below their maximum at L) go one each to those sessions in tie order, so the whole
capacity is used when demand exceeds it. Tie order is the number in the first 12 hex digits
of the session id, then the id: it depends on the ids only, never on arrival order, and is
locale-free in Lua. Lua (grid/lua/lib.lua) does exactly this; tests compare them to the watt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TIE_RE = re.compile(r"\.([0-9a-f]{12})")


@dataclass(frozen=True)
class Demand:
    session_id: str
    min_w: int
    max_w: int


def tie_key(session_id: str) -> tuple[int, str]:
    match = _TIE_RE.search(session_id)
    return (int(match.group(1), 16) if match else 0, session_id)


def _level_sum(demands: Sequence[Demand], level: int) -> int:
    return sum(min(max(level, d.min_w), d.max_w) for d in demands)


def allocate(demands: Sequence[Demand], capacity_w: int) -> dict[str, int]:
    """{session_id: watts}. Requires sum(min_w) <= capacity_w and min_w <= max_w."""
    if not demands:
        return {}
    if sum(d.max_w for d in demands) <= capacity_w:
        return {d.session_id: d.max_w for d in demands}
    lo, hi = 0, max(d.max_w for d in demands)
    while lo < hi:  # the highest level whose clamped sum fits
        mid = (lo + hi + 1) // 2
        if _level_sum(demands, mid) <= capacity_w:
            lo = mid
        else:
            hi = mid - 1
    out = {d.session_id: min(max(lo, d.min_w), d.max_w) for d in demands}
    left = capacity_w - sum(out.values())
    rising = sorted((d for d in demands if d.min_w <= lo < d.max_w),
                    key=lambda d: tie_key(d.session_id))
    for d in rising[:left]:
        out[d.session_id] += 1
    return out


def share_of_newcomer(demands: Sequence[Demand], newcomer: Demand, capacity_w: int) -> int:
    """The watts `newcomer` would get if admitted now; 0 when the minimums would not fit."""
    if sum(d.min_w for d in demands) + newcomer.min_w > capacity_w:
        return 0
    return allocate([*demands, newcomer], capacity_w)[newcomer.session_id]
