"""The floor for the balancer's added latency: a Flask+Gunicorn pass-through and nothing else.

It forwards POST /charge to one substation over the same kind of keep-alive urllib3 pool the
balancer uses, under the same Gunicorn settings (common.gunicorn_conf), with no validation, no
Redis, no metrics and no failover. What it adds over a direct call is the cost of one extra
HTTP hop in this stack on this machine; the balancer adds its routing on top of that.
Environment: UPSTREAM (the substation's base URL).
"""

from __future__ import annotations

import urllib3
from flask import Flask, Response, jsonify, request

from common.settings import env_str


def create_app() -> Flask:
    pool = urllib3.connection_from_url(env_str("UPSTREAM"), maxsize=32, retries=False)
    app = Flask(__name__)

    @app.post("/charge")
    def charge() -> Response:
        upstream = pool.request("POST", "/charge", body=request.get_data(),
                                headers={"Content-Type": "application/json"})
        return Response(upstream.data, status=upstream.status, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    return app
