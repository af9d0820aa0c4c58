"""Balancer HTTP API (SPEC section 3): thin views over Router, Decider and Upstream."""

from __future__ import annotations

import logging
import random

import redis
from flask import Flask, jsonify

from balancer import keys
from balancer.config import Config, load_config
from balancer.health import HealthChecker
from balancer.metrics import BalancerCollector
from balancer.poller import Poller
from balancer.router import Router
from balancer.status import build_status
from balancer.strategies import NAMES, RESERVING, build
from balancer.upstream import Upstream, UpstreamError
from balancer.view import Decider
from common.metrics import install_metrics
from common.web import (
    ApiError,
    check_token,
    health_response,
    json_object,
    register_error_handlers,
)
from substations.validation import MAX_BODY_BYTES, parse_charge
from substations.wire import substation_of

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, background: bool = True) -> Flask:
    """One app per Gunicorn worker: its own Redis pool, HTTP pool, poller and checker."""
    cfg = config or load_config()
    client = redis.Redis.from_url(cfg.redis_url, decode_responses=True, socket_timeout=5,
                                  socket_connect_timeout=2, health_check_interval=30)
    upstream = Upstream(cfg.substations, cfg.upstream_timeout_s)
    names = list(cfg.substations)
    poller = Poller(upstream, cfg.poll_interval_s)
    decider = Decider(client, names, cfg.strategy, RESERVING, cfg.reservation_ttl_ms)
    router = Router(client, decider, build(poller, random.Random()), upstream, cfg.eject_after)
    if background:
        poller.start()
        HealthChecker(client, upstream, cfg.health_interval_s).start()

    app = Flask(__name__)
    register_error_handlers(app)
    install_metrics(app, "balancer", [BalancerCollector(client, names)])

    @app.post("/charge")
    def charge():
        req = parse_charge(json_object(MAX_BODY_BYTES))
        routed = router.route(req)
        resp = jsonify(routed.body)
        resp.status_code = routed.status
        resp.headers.update(routed.headers)
        # Bookkeeping runs once the answer is on the wire: the car need not wait for it.
        resp.call_on_close(routed.journal)
        return resp

    @app.delete("/sessions/<session_id>")
    def end_session(session_id: str):
        name = substation_of(session_id)
        if name not in cfg.substations:
            raise ApiError(404, "no such session", session_id=session_id)
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
        return jsonify(build_status(client, decider, cfg.substations))

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
