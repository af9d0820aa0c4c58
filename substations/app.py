"""Substation HTTP API: thin views over SessionStore (SPEC section 3)."""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify, request

from common.metrics import install_metrics
from common.web import ApiError, health_response, json_object, register_error_handlers
from substations.config import Config, load_config
from substations.metrics import SubstationCollector
from substations.store import Admission, SessionStore, Snapshot
from substations.validation import MAX_BODY_BYTES, parse_charge
from substations.wire import (
    DEADLINE_HEADER,
    NO_CAPACITY,
    RESERVATION_HEADER,
    deadline_from,
    iso_from_ms,
    kw,
    reservation_from,
)

log = logging.getLogger(__name__)
STATUS_MAX_SESSIONS = 1000


def create_app(config: Config | None = None) -> Flask:
    cfg = config or load_config()
    client = redis.Redis.from_url(cfg.redis_url, decode_responses=True, socket_timeout=5,
                                  socket_connect_timeout=2, health_check_interval=30)
    store = SessionStore(client, cfg.name, cfg.capacity_w)
    try:
        store.publish_capacity()  # so balancers can rank this substation at once
    except redis.RedisError as exc:
        log.warning("grid redis not reachable at startup: %s", exc)

    app = Flask(__name__)
    register_error_handlers(app)
    install_metrics(app, "substation", [SubstationCollector(store)])

    @app.post("/charge")
    def charge():
        req = parse_charge(json_object(MAX_BODY_BYTES))
        reservation = reservation_from(request.headers.get(RESERVATION_HEADER))
        deadline = deadline_from(request.headers.get(DEADLINE_HEADER))
        result = store.admit(req, cfg.charge_duration_s, reservation, deadline)
        if result.admitted:
            return jsonify(_admitted(cfg.name, req.power_w, result))
        if result.late:
            raise ApiError(504, "request deadline passed before admission")
        return _refused(cfg.name, req.power_w, result)

    @app.delete("/sessions/<session_id>")
    def end_session(session_id: str):
        ended = store.end(session_id)
        if ended is None:
            raise ApiError(404, "no such active session", session_id=session_id)
        freed_w, load_w = ended
        return jsonify({"session_id": session_id, "substation": cfg.name, "ended": True,
                        "power_kw": kw(freed_w), **_load(load_w, cfg.capacity_w)})

    @app.get("/status")
    def status():
        return jsonify(_status(cfg.name, store.snapshot(STATUS_MAX_SESSIONS)))

    @app.get("/health")
    def health():
        try:
            store.publish_capacity()  # balancers read it; restores it after a Redis wipe
        except redis.RedisError:
            pass  # health_response reports Redis as down
        return health_response(client, substation=cfg.name)

    return app


def _load(load_w: int, capacity_w: int) -> dict:
    return {"load_kw": kw(load_w), "capacity_kw": kw(capacity_w),
            "utilization": round(load_w / capacity_w, 6) if capacity_w else 0.0}


def _admitted(name: str, power_w: int, result: Admission) -> dict:
    return {"session_id": result.session_id, "substation": name, "power_kw": kw(power_w),
            "ends_at": iso_from_ms(result.end_ms), **_load(result.load_w, result.capacity_w)}


def _refused(name: str, power_w: int, result: Admission):
    body = {"error": NO_CAPACITY, "substation": name, "power_kw": kw(power_w),
            "retry_after": result.retry_after_s, **_load(result.load_w, result.capacity_w)}
    headers = {}
    if result.retry_after_s is None:
        body["detail"] = "power_kw exceeds this substation's capacity"
    else:
        headers["Retry-After"] = str(result.retry_after_s)
    resp = jsonify(body)
    resp.status_code = 503
    resp.headers.update(headers)
    return resp


def _status(name: str, snap: Snapshot) -> dict:
    sessions = [{"session_id": s.session_id, "vehicle_id": s.vehicle_id,
                 "power_kw": kw(s.power_w), "started_at": iso_from_ms(s.start_ms),
                 "ends_at": iso_from_ms(s.end_ms)} for s in snap.sessions]
    return {"name": name, **_load(snap.load_w, snap.capacity_w), "active_sessions": snap.active,
            "admissions": {k: snap.counters[k] for k in ("admitted", "refused", "late")},
            "ended": {k: snap.counters[k] for k in ("expired", "deleted")},
            "server_time": iso_from_ms(snap.now_ms), "sessions": sessions}
