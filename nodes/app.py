"""The KV node's HTTP API: thin views that validate input and call NodeStore."""

from __future__ import annotations

import logging
import time

from flask import Flask, jsonify, request

from common.metrics import install_metrics
from common.web import ApiError, check_token, health_response, json_object, register_error_handlers
from nodes import validation as v
from nodes import vclock
from nodes.config import MAX_VALUE_BYTES, NodeConfig
from nodes.metrics import (
    BUFFERED_SECONDS,
    CONTEXT_WAITS,
    DELIVERIES,
    DUPLICATES,
    NodeStateCollector,
)
from nodes.replication import start_senders
from nodes.store import NodeStore

KV_BODY_MAX = MAX_VALUE_BYTES + 64 * 1024
REPLICATE_BODY_MAX = 32 * 1024 * 1024


def await_context(store: NodeStore, context: list[int] | None, timeout_s: float) -> None:
    """Return once the node's clock is at least `context`; 503 + Retry-After after timeout_s."""
    if context is None:
        return
    deadline = time.monotonic() + timeout_s
    pause = 0.002
    clock = store.clock()
    if vclock.leq(context, clock):
        return
    while time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
        clock = store.clock()
        if vclock.leq(context, clock):
            CONTEXT_WAITS.labels("satisfied").inc()
            return
    CONTEXT_WAITS.labels("timeout").inc()
    raise ApiError(503, "this node has not yet seen everything in the context",
                   headers={"Retry-After": "1"}, context=context, vector_clock=clock)


def kv_response(cfg: NodeConfig, key: str, vc: list[int], siblings: list[dict]):
    best = vclock.winner(siblings)
    return jsonify(key=key, value=best["value"], version=best["version"], vector_clock=vc,
                   node=cfg.node_id, siblings=siblings)


def create_app(cfg: NodeConfig | None = None, start_background: bool | None = None) -> Flask:
    cfg = cfg or NodeConfig.from_env()
    store = NodeStore(cfg)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = REPLICATE_BODY_MAX
    app.extensions["gridclock.store"] = store
    register_error_handlers(app)
    install_metrics(app, "node", [NodeStateCollector(store)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    @app.put("/kv/<path:key>")
    def put(key: str):
        v.check_key(key)
        body = json_object(KV_BODY_MAX)
        value_json = v.encode_value(body)
        context = body.get("context")
        if context is not None:
            context = v.check_clock(context, cfg.n)
        await_context(store, context, cfg.context_wait_s)
        vc, siblings = store.local_write(key, value_json)
        DELIVERIES.labels(str(cfg.node_id), "local").inc()
        return kv_response(cfg, key, vc, siblings)

    @app.get("/kv/<path:key>")
    def get(key: str):
        v.check_key(key)
        context = v.parse_context_param(request.args.get("context"), cfg.n)
        await_context(store, context, cfg.context_wait_s)
        vc, siblings = store.read(key)
        if not siblings:
            raise ApiError(404, "no such key", key=key, vector_clock=vc)
        return kv_response(cfg, key, vc, siblings)

    @app.route("/kv/", methods=["GET", "PUT"])
    def empty_key():
        raise ApiError(400, "key must not be empty")

    @app.get("/status")
    def status():
        return jsonify(node=cfg.node_id, nodes=len(cfg.node_urls), **store.snapshot())

    @app.get("/events")
    def events():
        since = v.parse_int_param(request.args.get("since"), "since", 0, 0, 2**62)
        limit = v.parse_int_param(request.args.get("limit"), "limit", 100, 1, 10_000)
        items, nxt = store.events(since, limit)
        return jsonify(events=items, next=nxt)

    @app.get("/admin/links")
    def get_links():
        check_token(cfg.admin_token, "X-Admin-Token")
        return jsonify(node=cfg.node_id, links=store.all_links())

    @app.post("/admin/links")
    def set_links():
        check_token(cfg.admin_token, "X-Admin-Token")
        peer, delay, paused = v.check_link(json_object(64 * 1024), cfg.n, cfg.node_id)
        return jsonify(node=cfg.node_id, peer=peer, **store.set_link(peer, delay, paused))

    @app.post("/replicate")
    def replicate():
        check_token(cfg.cluster_token, "X-Cluster-Token")
        origin, messages = v.check_replication(json_object(REPLICATE_BODY_MAX), cfg.n,
                                               cfg.node_id)
        result = store.receive(origin, messages)
        if result.duplicates:
            DUPLICATES.inc(result.duplicates)
        for d in result.delivered:
            DELIVERIES.labels(str(d.origin), "replicated").inc()
            BUFFERED_SECONDS.observe(d.buffered_ms / 1000)
        return jsonify(acked=messages[-1]["vc"][origin], delivered=len(result.delivered),
                       buffered=result.buffer_size, duplicates=result.duplicates,
                       vector_clock=result.vector_clock)

    @app.get("/health")
    def health():
        return health_response(store.redis, node=cfg.node_id)

    if start_background if start_background is not None else cfg.start_senders:
        start_senders(cfg, store)
    return app
