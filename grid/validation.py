"""The one place a charge request is checked: used by the substation and by the balancer.

Bad input raises ApiError(400) before anything reaches Redis or a substation. Quantities
become exact integers here (W, ms, W*ms) and stay integers down to Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.web import ApiError
from grid.wire import WMS_PER_KWH

MAX_VEHICLE_ID = 64
MAX_POWER_KW = 1000.0  # above this a request is absurd for one EV charger
MAX_DURATION_S = 86400.0
MAX_ENERGY_KWH = 1000.0
DEFAULT_POWER_KW = 7.4
DEFAULT_MIN_POWER_KW = 1.4  # the lowest rate a charger can hold
MAX_BODY_BYTES = 4096
FIELDS = frozenset({"vehicle_id", "power_kw", "min_power_kw", "duration_s", "energy_kwh",
                    "wait", "allow_reduced"})


@dataclass(frozen=True)
class ChargeRequest:
    vehicle_id: str
    power_w: int  # the most it takes
    duration_s: float | None = None  # None: the substation's CHARGE_DURATION_S
    min_w: int = 0  # the least it accepts (== power_w: full power or refusal); 0: power_w
    energy_wms: int = 0  # ends once it has received this much; 0: no target
    wait: bool = False  # queue when no substation can take it now (balancer only)

    @property
    def floor_w(self) -> int:
        return self.min_w or self.power_w


def parse_charge(body: dict[str, Any]) -> ChargeRequest:
    """Validate a POST /charge body (already a JSON object)."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}", valid=sorted(FIELDS))
    vehicle_id = body.get("vehicle_id")
    if not isinstance(vehicle_id, str) or not vehicle_id.strip():
        raise ApiError(400, "vehicle_id is required: a non-empty string")
    if len(vehicle_id) > MAX_VEHICLE_ID:
        raise ApiError(400, f"vehicle_id is over {MAX_VEHICLE_ID} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in vehicle_id):
        raise ApiError(400, "vehicle_id contains control characters")
    power_w = round(_number(body, "power_kw", DEFAULT_POWER_KW, MAX_POWER_KW) * 1000)
    if power_w < 1:
        raise ApiError(400, "power_kw is below 1 W")
    allow_reduced = _flag(body, "allow_reduced", True)
    min_kw = _number(body, "min_power_kw", None, MAX_POWER_KW)
    if min_kw is None:  # the default minimum, or the whole request when it asks for less
        min_w = min(round(DEFAULT_MIN_POWER_KW * 1000), power_w)
    else:
        min_w = round(min_kw * 1000)
        if min_w < 1:
            raise ApiError(400, "min_power_kw is below 1 W")
        if min_w > power_w:
            raise ApiError(400, "min_power_kw is above power_kw")
    if not allow_reduced:
        min_w = power_w
    duration_s = _number(body, "duration_s", None, MAX_DURATION_S)
    if duration_s is not None and duration_s < 0.001:
        raise ApiError(400, "duration_s is below 1 ms")
    energy_kwh = _number(body, "energy_kwh", None, MAX_ENERGY_KWH)
    energy_wms = round(energy_kwh * WMS_PER_KWH) if energy_kwh is not None else 0
    if energy_kwh is not None and energy_wms < 1:
        raise ApiError(400, "energy_kwh is below 1 W*ms")
    return ChargeRequest(vehicle_id, power_w, duration_s, min_w, energy_wms,
                         _flag(body, "wait", False))


def _flag(body: dict[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"{field} must be true or false")
    return value


def _number(body: dict[str, Any], field: str, default: float | None,
            maximum: float) -> float | None:
    if field not in body or body[field] is None:
        return default
    value = body[field]
    # bool is an int subclass in Python; true is not a power.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"{field} must be a number")
    if isinstance(value, int) and abs(value) > 10**15:  # before float(): no OverflowError
        raise ApiError(400, f"{field} is absurd: over {maximum:g}")
    if not math.isfinite(value):
        raise ApiError(400, f"{field} must be a finite number")
    if value <= 0:
        raise ApiError(400, f"{field} must be positive")
    if value > maximum:
        raise ApiError(400, f"{field} is absurd: over {maximum:g}")
    return float(value)
