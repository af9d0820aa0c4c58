"""JSON shapes shared by the substation and the balancer (SPEC section 3)."""

from __future__ import annotations

from typing import Any

from grid.sessions import Session, SessionState
from grid.wire import iso_from_ms, kw, kwh


def load_json(load_w: int, capacity_w: int) -> dict[str, Any]:
    return {"load_kw": kw(load_w), "capacity_kw": kw(capacity_w),
            "utilization": round(load_w / capacity_w, 6) if capacity_w else 0.0}


def session_json(sess: Session) -> dict[str, Any]:
    """A charging session in /status and GET /sessions/<id>."""
    body = {"session_id": sess.session_id, "vehicle_id": sess.vehicle_id,
            "power_kw": kw(sess.power_w), "min_power_kw": kw(sess.min_w),
            "allocated_kw": kw(sess.allocated_w), "energy_kwh": kwh(sess.energy_wms),
            "started_at": iso_from_ms(sess.start_ms), "ends_at": iso_from_ms(sess.end_ms)}
    if sess.target_wms:
        body["target_kwh"] = kwh(sess.target_wms)
    return body


def state_json(substation: str, st: SessionState) -> dict[str, Any]:
    """GET /sessions/<id>: state, allocation, energy so far and where it is."""
    if st.session is not None:
        return {"state": "charging", "substation": substation, **session_json(st.session)}
    return {"session_id": st.session_id, "state": st.state, "substation": substation,
            "vehicle_id": st.vehicle_id, "power_kw": kw(st.power_w), "allocated_kw": 0.0,
            "energy_kwh": kwh(st.energy_wms), "reason": st.reason,
            "ended_at": iso_from_ms(st.ended_ms) if st.ended_ms else None}
