"""Substation HTTP API: thin views over grid.sessions.SessionStore (SPEC section 3)."""

from __future__ import annotations

import logging
import time

import redis
from flask import Flask, jsonify, request

from common.metrics import install_metrics
from common.web import ApiError, health_response, json_object, register_error_handlers
from grid.answers import load_json, session_json, state_json
from grid.sessions import Admission, SessionStore, Snapshot
from grid.validation import MAX_BODY_BYTES, ChargeRequest, parse_charge
from grid.wire import (
    DEADLINE_HEADER,
    NO_CAPACITY,
    RESERVATION_HEADER,
    SESSION_HEADER,
    deadline_from,
    iso_from_ms,
    kw,
    kwh,
    reservation_from,
    split_session_id,
)
from substations.config import Config, load_config
from substations.metrics import SubstationCollector
from substations.reaper import Reaper

log = logging.getLogger(__name__)
STATUS_MAX_SESSIONS = 1000


def create_app(config: Config | None = None, background: bool = True) -> Flask:
    cfg = config or load_config()
    client = redis.Redis.from_url(cfg.redis_url, decode_responses=True, socket_timeout=5,
                                  socket_connect_timeout=2, health_check_interval=30)
    store = SessionStore(client, cfg.name, cfg.capacity_w)
    try:
        store.publish_capacity()  # so balancers can rank this substation at once
    except redis.RedisError as exc:
        log.warning("grid redis not reachable at startup: %s", exc)
    if background:
        Reaper(store, cfg.reap_interval_s).start()

    app = Flask(__name__)
    register_error_handlers(app)
    install_metrics(app, "substation", [SubstationCollector(store)])

    def own_session_id(raw: str | None) -> str | None:
        """The balancer's chosen id for this try: it must name this substation."""
        if raw is None:
            return None
        parts = split_session_id(raw)
        if parts is None or parts[0] != cfg.name:
            raise ApiError(400, f"{SESSION_HEADER} must be {cfg.name}.<16 hex>")
        return raw

    @app.post("/charge")
    def charge():
        req = parse_charge(json_object(MAX_BODY_BYTES))
        session_id = own_session_id(request.headers.get(SESSION_HEADER))
        reservation = reservation_from(request.headers.get(RESERVATION_HEADER))
        deadline = deadline_from(request.headers.get(DEADLINE_HEADER))
        if cfg.test_admit_delay_s:
            time.sleep(cfg.test_admit_delay_s)
        result = store.admit(req, cfg.charge_duration_s, reservation, deadline, session_id)
        if cfg.test_reply_delay_s:
            time.sleep(cfg.test_reply_delay_s)
        if result.admitted:
            return jsonify(_admitted(cfg.name, req, result))
        if result.late:
            raise ApiError(504, "request deadline passed before admission")
        return _refused(cfg.name, req, result)

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        st = store.session(session_id)
        if st.state == "unknown":
            raise ApiError(404, "no such session", session_id=session_id)
        return jsonify(state_json(cfg.name, st))

    @app.delete("/sessions/<session_id>")
    def end_session(session_id: str):
        ended = store.end(session_id)
        if ended is None:
            raise ApiError(404, "no such active session", session_id=session_id)
        alloc_w, load_w, energy_wms = ended
        return jsonify({"session_id": session_id, "substation": cfg.name, "ended": True,
                        "state": "ended", "allocated_kw": kw(alloc_w),
                        "energy_kwh": kwh(energy_wms), **load_json(load_w, cfg.capacity_w)})

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


def _admitted(name: str, req: ChargeRequest, result: Admission) -> dict:
    body = {"session_id": result.session_id, "substation": name, "state": "charging",
            "power_kw": kw(req.power_w), "min_power_kw": kw(req.floor_w),
            "allocated_kw": kw(result.allocated_w), "ends_at": iso_from_ms(result.end_ms),
            **load_json(result.load_w, result.capacity_w)}
    if req.energy_wms:
        body["target_kwh"] = kwh(req.energy_wms)
    return body


def _refused(name: str, req: ChargeRequest, result: Admission):
    body = {"error": NO_CAPACITY, "substation": name, "power_kw": kw(req.power_w),
            "min_power_kw": kw(req.floor_w), "retry_after": result.retry_after_s,
            **load_json(result.load_w, result.capacity_w)}
    headers = {}
    if result.retry_after_s is None:
        body["detail"] = "min_power_kw exceeds this substation's capacity"
    else:
        headers["Retry-After"] = str(result.retry_after_s)
    resp = jsonify(body)
    resp.status_code = 503
    resp.headers.update(headers)
    return resp


def _status(name: str, snap: Snapshot) -> dict:
    return {"name": name, **load_json(snap.load_w, snap.capacity_w),
            "active_sessions": snap.active, "allocated_kw": kw(snap.load_w),
            "requested_kw": kw(snap.max_sum_w), "minimum_kw": kw(snap.min_sum_w),
            "energy_kwh": kwh(snap.energy_wms),
            "admissions": {k: snap.counters[k] for k in ("admitted", "refused", "late")},
            "ended": {k: snap.counters[k] for k in ("expired", "charged", "deleted",
                                                     "abandoned")},
            "audit": {"peak_kw": kw(snap.peak_w), "over_capacity_steps": snap.over},
            "server_time": iso_from_ms(snap.now_ms),
            "sessions": [session_json(s) for s in snap.sessions]}
