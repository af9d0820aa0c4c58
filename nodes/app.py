"""The KV node's HTTP API: thin views that validate input and call NodeStore."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, jsonify, request

from common.metrics import install_metrics
from common.web import (
    ApiError,
    check_token,
    error_response,
    health_response,
    json_object,
    register_error_handlers,
)
from nodes import sync, vclock
from nodes import validation as v
from nodes.config import MAX_VALUE_BYTES, NodeConfig
from nodes.metrics import (
    BUFFERED_SECONDS,
    CONTEXT_WAITS,
    DELIVERIES,
    DUPLICATES,
    NodeStateCollector,
)
from nodes.recovery import Guard
from nodes.replication import start_senders
from nodes.store import NodeStore, NotServing

KV_BODY_MAX = MAX_VALUE_BYTES + 64 * 1024
REPLICATE_BODY_MAX = 32 * 1024 * 1024
SYNC_BODY_MAX = 256 * 1024
LIST_LIMIT_MAX = 1000
SHORT_WAIT_S = 0.05  # what a context request gets when every waiting slot is taken


class ContextWaiters:
    """Caps the requests of one worker that wait for a causal context, so that unsatisfiable
    contexts cannot hold every thread and starve writes: over the cap the answer is an
    immediate 503 with Retry-After."""

    def __init__(self, store: NodeStore, limit: int, timeout_s: float):
        self.store, self.timeout_s = store, timeout_s
        self.slots = threading.BoundedSemaphore(limit)

    def wait(self, context: list[int] | None) -> None:
        if context is None:
            return
        clock = self.store.clock()
        if vclock.leq(context, clock):
            return
        if self.slots.acquire(blocking=False):
            try:
                clock = self._poll(context, self.timeout_s)
            finally:
                self.slots.release()
            outcome, error = "timeout", "this node has not yet seen everything in the context"
        else:
            # No slot: a short grace (replication lag is usually milliseconds), then 503.
            clock = self._poll(context, SHORT_WAIT_S)
            outcome, error = "refused", "too many requests are already waiting for a causal context"
        if clock is None:
            CONTEXT_WAITS.labels("satisfied").inc()
            return
        CONTEXT_WAITS.labels(outcome).inc()
        raise ApiError(503, error, headers={"Retry-After": "1"}, context=context,
                       vector_clock=clock)

    def _poll(self, context: list[int], timeout_s: float) -> list[int] | None:
        """None once the clock covers `context`, else the last clock seen at the deadline."""
        deadline = time.monotonic() + timeout_s
        pause = 0.002
        clock = self.store.clock()
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            clock = self.store.clock()
            if vclock.leq(context, clock):
                return None
        return clock


def kv_response(cfg: NodeConfig, key: str, vc: list[int], siblings: list[dict]):
    best = vclock.winner(siblings)
    return jsonify(key=key, value=best["value"], version=best["version"], vector_clock=vc,
                   node=cfg.node_id, siblings=siblings)


def create_app(cfg: NodeConfig | None = None, start_background: bool | None = None) -> Flask:
    cfg = cfg or NodeConfig.from_env()
    store = NodeStore(cfg)
    waiters = ContextWaiters(store, cfg.context_waiters, cfg.context_wait_s)
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
        waiters.wait(context)
        try:
            vc, siblings = store.local_write(key, value_json)
        except NotServing as exc:
            raise ApiError(503, f"node is recovering and accepts no writes yet: {exc}",
                           headers={"Retry-After": "2"}, state="recovering") from exc
        DELIVERIES.labels(str(cfg.node_id), "local").inc()
        return kv_response(cfg, key, vc, siblings)

    @app.get("/kv/<path:key>")
    def get(key: str):
        v.check_key(key)
        context = v.parse_context_param(request.args.get("context"), cfg.n)
        waiters.wait(context)
        vc, siblings = store.read(key)
        if not siblings:
            raise ApiError(404, "no such key", key=key, vector_clock=vc)
        return kv_response(cfg, key, vc, siblings)

    @app.route("/kv/", methods=["GET", "PUT"])
    def empty_key():
        raise ApiError(400, "key must not be empty")

    @app.get("/kv")
    def list_keys():
        prefix = v.check_prefix(request.args.get("prefix"), "prefix")
        cursor = request.args.get("cursor") or None
        if cursor is not None:
            v.check_prefix(cursor, "cursor")
        limit = v.parse_int_param(request.args.get("limit"), "limit", 100, 1, LIST_LIMIT_MAX)
        items, nxt, vc = store.list_keys(prefix, cursor, limit)
        return jsonify(items=items, cursor=nxt, vector_clock=vc, node=cfg.node_id)

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

    @app.post("/admin/sync")
    def admin_sync():
        """Run an anti-entropy round with every peer now (and first rebuild the digest from
        the stored data when asked: finds damage done by hand)."""
        check_token(cfg.admin_token, "X-Admin-Token")
        body = json_object(1024) if request.content_length else {}
        rebuild = body.get("rebuild", False)
        if not isinstance(rebuild, bool):
            raise ApiError(400, "rebuild must be true or false")
        fixed = store.digest_rebuild() if rebuild else 0
        results = sync.SyncClient(cfg, store).round()
        return jsonify(node=cfg.node_id, digest_fixed=fixed,
                       sync={str(r.peer): r.as_dict() for r in results})

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
        if result.refused:
            sync.wake(store)  # a state transfer fills the gap the buffer is waiting on
            if not result.acked:
                raise ApiError(503, "buffer full: waiting for a state transfer",
                               headers={"Retry-After": "1"}, buffered=result.buffer_size,
                               buffer_max=cfg.buffer_max)
        return jsonify(acked=result.acked, delivered=len(result.delivered),
                       buffered=result.buffer_size, duplicates=result.duplicates,
                       vector_clock=result.vector_clock)

    # -- node to node: verification and anti-entropy ------------------------------------------
    @app.post("/sync/hello")
    def sync_hello():
        check_token(cfg.cluster_token, "X-Cluster-Token")
        body = json_object(SYNC_BODY_MAX)
        origin = v.check_peer_origin(body, cfg.n, cfg.node_id)
        floor = body.get("floor", 0)
        if isinstance(floor, bool) or not isinstance(floor, int) or not 0 <= floor < 2**53:
            raise ApiError(400, "floor must be a non-negative integer")
        return jsonify(node=cfg.node_id,
                       **store.hello(origin, v.check_incarnation(body), floor))

    @app.post("/sync/digest")
    def sync_digest():
        check_token(cfg.cluster_token, "X-Cluster-Token")
        body = json_object(SYNC_BODY_MAX)
        origin = v.check_peer_origin(body, cfg.n, cfg.node_id)
        peer_vc, top = v.check_digest(body, cfg.n)
        link = store.get_link(origin)
        if link["paused"] or link["delay_ms"]:
            # Fault injection covers every path from this node to that peer.
            raise ApiError(503, f"link to node {origin + 1} is paused or delayed",
                           headers={"Retry-After": "1"})
        vc, delta, leaves = store.sync_delta(peer_vc, top)
        return jsonify(vc=vc, delta=delta, leaves=leaves)

    @app.post("/sync/leaves")
    def sync_leaves():
        check_token(cfg.cluster_token, "X-Cluster-Token")
        body = json_object(SYNC_BODY_MAX)
        v.check_peer_origin(body, cfg.n, cfg.node_id)
        return jsonify(items=store.sync_leaves(v.check_leaves(body)))

    @app.post("/sync/kick")
    def sync_kick():
        check_token(cfg.cluster_token, "X-Cluster-Token")
        v.check_peer_origin(json_object(SYNC_BODY_MAX), cfg.n, cfg.node_id)
        sync.wake(store)
        resp = jsonify(node=cfg.node_id, status="anti-entropy round scheduled")
        resp.status_code = 202
        return resp

    @app.get("/health")
    def health():
        resp = health_response(store.redis, node=cfg.node_id)
        if resp.status_code != 200:
            return resp
        state, reason = store.state()
        if state != "serving":
            return error_response(503, f"node is recovering: {reason}",
                                  {"Retry-After": "2"}, node=cfg.node_id, state=state)
        return resp

    if start_background if start_background is not None else cfg.start_senders:
        stop = start_senders(cfg, store)
        Guard(cfg, store, stop).start()
        sync.AntiEntropy(cfg, store, stop).start()
    return app
