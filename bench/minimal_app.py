"""The baseline for the KV throughput figure: the least a Flask+Gunicorn PUT can do.

One Redis SET per request against its own redis-server with the same durability as a node's
(appendonly yes, appendfsync always), the same Gunicorn settings (common.gunicorn_conf) and the
same JSON body parsing. No clocks, no log, no outbox, no metrics: what a node does beyond this is
the cost of causal replication. Environment: REDIS_URL.
"""

from __future__ import annotations

import json

import redis
from flask import Flask, jsonify

from common.settings import env_str
from common.web import ApiError, health_response, json_object, register_error_handlers

MAX_BODY_BYTES = 1024 * 1024 + 64 * 1024


def create_app() -> Flask:
    client = redis.Redis.from_url(env_str("REDIS_URL"))
    app = Flask(__name__)
    register_error_handlers(app)

    @app.put("/kv/<path:key>")
    def put(key: str):
        body = json_object(MAX_BODY_BYTES)
        if "value" not in body:
            raise ApiError(400, "value is required")
        client.set(key, json.dumps(body["value"]))
        return jsonify(key=key, value=body["value"])

    @app.get("/health")
    def health():
        return health_response(client)

    return app
