"""The one place a charge request is checked: used by the substation and by the balancer.

Bad input raises ApiError(400) before anything reaches Redis or a substation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.web import ApiError

MAX_VEHICLE_ID = 64
MAX_POWER_KW = 1000.0  # above this a request is absurd for one EV charger
MAX_DURATION_S = 86400.0
DEFAULT_POWER_KW = 7.4
MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class ChargeRequest:
    vehicle_id: str
    power_w: int
    duration_s: float | None  # None: the substation's CHARGE_DURATION_S

    def payload(self) -> dict[str, Any]:
        """The normalised body the balancer forwards to a substation."""
        body: dict[str, Any] = {"vehicle_id": self.vehicle_id, "power_kw": self.power_w / 1000}
        if self.duration_s is not None:
            body["duration_s"] = self.duration_s
        return body


def parse_charge(body: dict[str, Any]) -> ChargeRequest:
    """Validate a POST /charge body (already a JSON object)."""
    vehicle_id = body.get("vehicle_id")
    if not isinstance(vehicle_id, str) or not vehicle_id.strip():
        raise ApiError(400, "vehicle_id is required: a non-empty string")
    if len(vehicle_id) > MAX_VEHICLE_ID:
        raise ApiError(400, f"vehicle_id is over {MAX_VEHICLE_ID} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in vehicle_id):
        raise ApiError(400, "vehicle_id contains control characters")
    power_kw = _number(body, "power_kw", DEFAULT_POWER_KW, MAX_POWER_KW)
    power_w = round(power_kw * 1000)
    if power_w < 1:
        raise ApiError(400, "power_kw is below 1 W")
    duration_s = _number(body, "duration_s", None, MAX_DURATION_S)
    if duration_s is not None and duration_s < 0.001:
        raise ApiError(400, "duration_s is below 1 ms")
    return ChargeRequest(vehicle_id, power_w, duration_s)


def _number(body: dict[str, Any], field: str, default: float | None,
            maximum: float) -> float | None:
    if field not in body or body[field] is None:
        return default
    value = body[field]
    # bool is an int subclass in Python; true is not a power.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{field} must be a number")
    if value <= 0:
        raise ApiError(400, f"{field} must be positive")
    if value > maximum:
        raise ApiError(400, f"{field} is absurd: over {maximum:g}")
    return float(value)
