"""JSON errors, token checks and body parsing shared by every Flask service."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client caused or must be told about; rendered as JSON with `status`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra):
    body = {"error": message, **extra}
    resp = jsonify(body)
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as JSON: client mistakes as 4xx, our own faults as a bare 5xx."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(redis.exceptions.BusyLoadingError)
    def _redis_down(exc: Exception):
        log.warning("redis unavailable: %s", exc)
        return error_response(503, "redis unavailable", {"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")


def check_token(expected: str, header: str) -> None:
    """Constant-time comparison of a request header against a secret; 401 when it differs."""
    given = request.headers.get(header, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, f"missing or wrong {header}")


def json_body(max_bytes: int | None = None) -> Any:
    """The request body parsed as JSON; 413 when too large, 400 when not JSON."""
    length = request.content_length
    if max_bytes is not None and length is not None and length > max_bytes:
        raise ApiError(413, f"body over {max_bytes} bytes")
    data = request.get_data(cache=False)
    if max_bytes is not None and len(data) > max_bytes:
        raise ApiError(413, f"body over {max_bytes} bytes")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except _NonStandardNumber as exc:
        raise ApiError(400, f"body is not valid JSON: {exc} is not a JSON number") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "body is not valid JSON") from exc


class _NonStandardNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    """Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not, and a value
    stored with one could never be sent back as JSON."""
    raise _NonStandardNumber(name)


def json_object(max_bytes: int | None = None) -> dict[str, Any]:
    body = json_body(max_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def health_response(client: redis.Redis, **extra) -> Response:
    """200 when Redis answers PING, else 503: what every /health reports."""
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        return error_response(503, f"redis unavailable: {type(exc).__name__}", state="down")
    resp = jsonify({"status": "ok", **extra})
    return resp
