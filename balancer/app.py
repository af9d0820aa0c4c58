"""Balancer HTTP API (SPEC section 3): thin views over Router, RankAndReserve, CarQueue and
Upstream."""

from __future__ import annotations

import json
import logging
import random

import redis
from flask import Flask, jsonify, request

from balancer import keys
from balancer.config import Config, load_config
from balancer.health import HealthChecker
from balancer.metrics import BalancerCollector
from balancer.poller import Poller
from balancer.queue import CarQueue, Dispatcher
from balancer.ranking import RankAndReserve
from balancer.router import Router
from balancer.status import build_status
from balancer.strategies import NAMES, RESERVING, build
from balancer.upstream import Upstream, UpstreamError
from common.metrics import install_metrics
from common.web import (
    ApiError,
    check_token,
    health_response,
    json_object,
    register_error_handlers,
)
from grid.answers import state_json
from grid.sessions import SessionStore
from grid.validation import MAX_BODY_BYTES, parse_charge
from grid.wire import QUEUE_PREFIX, new_session_id, split_session_id

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, background: bool = True) -> Flask:
    """One app per Gunicorn worker: its own Redis pool, HTTP pool, poller and checker."""
    cfg = config or load_config()
    client = redis.Redis.from_url(cfg.redis_url, decode_responses=True, socket_timeout=5,
                                  socket_connect_timeout=2, health_check_interval=30)
    upstream = Upstream(cfg.substations, cfg.upstream_timeout_s)
    names = list(cfg.substations)
    poller = Poller(upstream, cfg.poll_interval_s)
    ranker = RankAndReserve(client, names, cfg.strategy, RESERVING, cfg.reservation_ttl_ms)
    queue = CarQueue(client)
    router = Router(client, ranker, build(poller, random.Random()), upstream, cfg.eject_after,
                    queue)
    stores = {name: SessionStore(client, name) for name in names}

    def place_queued(queue_id: str, body: bytes) -> str | None:
        """The dispatcher's try at one queued car: its substation, or None (still waiting)."""
        rid = queue_id.split(".", 1)[1]
        routed = router.route(parse_charge(json.loads(body)), body, rid, may_queue=False)
        routed.journal()
        if routed.status != 200:
            return None
        name = routed.body["substation"]
        if not queue.placed(queue_id, name):  # cancelled while we placed it
            stores[name].end(routed.body["session_id"], "abandoned")
        return name

    if background:
        poller.start()
        HealthChecker(client, upstream, cfg.health_interval_s).start()
        Dispatcher(client, queue, place_queued).start()

    app = Flask(__name__)
    register_error_handlers(app)
    install_metrics(app, "balancer", [BalancerCollector(client, names)])

    @app.post("/charge")
    def charge():
        # The car's own bytes are forwarded as they came (validated here and again there).
        small = request.content_length is not None and request.content_length <= MAX_BODY_BYTES
        raw = request.get_data() if small else None  # cached: json_object reads it again
        body = json_object(MAX_BODY_BYTES)
        req = parse_charge(body)
        routed = router.route(req, raw or json.dumps(body).encode())
        resp = jsonify(routed.body)
        resp.status_code = routed.status
        resp.headers.update(routed.headers)
        # Bookkeeping runs once the answer is on the wire: the car need not wait for it.
        resp.call_on_close(routed.journal)
        return resp

    def holder(session_id: str) -> tuple[str, str]:
        parts = split_session_id(session_id)
        if parts is None or (parts[0] not in cfg.substations and parts[0] != QUEUE_PREFIX):
            raise ApiError(404, "no such session", session_id=session_id)
        return parts

    @app.get("/sessions/<session_id>")
    def get_session(session_id: str):
        name, rid = holder(session_id)
        if name == QUEUE_PREFIX:
            position, where = queue.lookup(session_id)
            if position is not None:
                return jsonify({"session_id": session_id, "state": "queued",
                                "position": position, "allocated_kw": 0.0, "energy_kwh": 0.0,
                                "substation": None})
            if where is None:
                raise ApiError(404, "no such session", session_id=session_id)
            if where == "":
                return jsonify({"session_id": session_id, "state": "ended",
                                "reason": "cancelled", "allocated_kw": 0.0, "energy_kwh": 0.0,
                                "substation": None})
            name, session_id = where, new_session_id(where, rid)
        st = stores[name].session(session_id)
        if st.state == "unknown":
            raise ApiError(404, "no such session", session_id=session_id)
        return jsonify(state_json(name, st))

    @app.delete("/sessions/<session_id>")
    def end_session(session_id: str):
        name, rid = holder(session_id)
        if name == QUEUE_PREFIX:
            cancelled, where = queue.cancel(session_id)
            if cancelled:
                return jsonify({"session_id": session_id, "state": "ended", "ended": True,
                                "reason": "cancelled"})
            if not where:
                raise ApiError(404, "no such queued session", session_id=session_id)
            name, session_id = where, new_session_id(where, rid)
        try:
            status, body = upstream.end(name, session_id)
        except UpstreamError as exc:
            raise ApiError(503, f"substation {name} unavailable: {exc}",
                           {"Retry-After": "1"}, substation=name) from exc
        resp = jsonify(body)
        resp.status_code = status
        return resp

    @app.get("/status")
    def status():
        return jsonify(build_status(client, ranker, queue, cfg.substations))

    @app.post("/admin/strategy")
    def set_strategy():
        check_token(cfg.admin_token, "X-Admin-Token")
        strategy = json_object(MAX_BODY_BYTES).get("strategy")
        if strategy not in NAMES:
            raise ApiError(400, f"unknown strategy {strategy!r}", valid=list(NAMES))
        client.set(keys.STRATEGY, strategy)
        log.info("routing strategy set to %s", strategy)
        return jsonify({"strategy": strategy})

    @app.get("/admin/strategy")
    def get_strategy():
        return jsonify({"strategy": client.get(keys.STRATEGY) or cfg.strategy,
                        "valid": list(NAMES)})

    @app.get("/health")
    def health():
        return health_response(client, substations=len(names))

    return app
