"""Thin REST clients for the panel: every call returns the JSON body or an ApiError, never raises.

The page shows an ApiError as one line ("node2 down: connection refused"), so its `reason` is
written for a person: connection refused, timeout, or the HTTP status with the service's JSON
error message.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from panel.metrics import observe

Json = dict[str, Any]


@dataclass(frozen=True)
class ApiError:
    """A call that did not return a usable answer, with the reason in words."""

    service: str
    reason: str
    status: int | None = None  # HTTP status when the service answered, else None
    body: Json | None = None  # the service's JSON error body, when there was one

    @property
    def down(self) -> bool:
        """Unreachable or failing (5xx), as opposed to refusing a bad request (4xx)."""
        return self.status is None or self.status >= 500

    def __str__(self) -> str:
        return f"{self.service} {'down' if self.down else 'error'}: {self.reason}"


Result = Json | ApiError


def is_error(result: object) -> bool:
    return isinstance(result, ApiError)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def describe_exception(exc: requests.RequestException, timeout: float) -> str:
    """Short human reason for a transport failure."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "ConnectionRefusedError" in text:
            return "connection refused"
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return "connection closed without an answer"
        match = _ERRNO.search(text)
        return f"cannot connect: {match.group(1).strip()}" if match else "cannot connect"
    return f"request failed: {type(exc).__name__}"


def describe_response(response: requests.Response) -> tuple[str, Json | None]:
    """Reason and JSON body of an HTTP error response."""
    body: Json | None = None
    with contextlib.suppress(ValueError):  # a non-JSON error page keeps body None
        parsed = response.json()
        body = parsed if isinstance(parsed, dict) else None
    if body and body.get("error"):
        detail = str(body["error"])
    else:
        detail = response.reason or response.text.strip()[:120] or "no details"
    return f"HTTP {response.status_code}: {detail}", body


class Service:
    """One HTTP service of the stack, named as the page names it."""

    def __init__(self, name: str, base_url: str, timeout: float = 2.0,
                 admin_token: str | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.admin_token = admin_token

    def request(self, method: str, path: str, *, params: Json | None = None,
                json: object = None, admin: bool = False,
                timeout: float | None = None) -> Result:
        timeout = self.timeout if timeout is None else timeout
        headers = {}
        if admin:
            if not self.admin_token:
                return ApiError(self.name, "ADMIN_TOKEN is not set for the panel", status=401)
            headers["X-Admin-Token"] = self.admin_token
        started = time.perf_counter()
        try:
            response = requests.request(method, self.base_url + path, params=params, json=json,
                                        headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            observe(self.name, "unreachable", time.perf_counter() - started)
            return ApiError(self.name, describe_exception(exc, timeout))
        observe(self.name, f"{response.status_code // 100}xx", time.perf_counter() - started)
        if response.status_code >= 400:
            reason, body = describe_response(response)
            return ApiError(self.name, reason, status=response.status_code, body=body)
        try:
            data = response.json()
        except ValueError:
            return ApiError(self.name, f"HTTP {response.status_code} but the body is not JSON",
                            status=response.status_code)
        if not isinstance(data, dict):
            return ApiError(self.name, "unexpected JSON (not an object)",
                            status=response.status_code)
        return data

    def health(self) -> Result:
        return self.request("GET", "/health")

    def status(self) -> Result:
        return self.request("GET", "/status")


def context_param(context: list[int] | None) -> str | None:
    return None if context is None else ",".join(str(int(x)) for x in context)


class KvNode(Service):
    """A causal KV node (SPEC section 2). `node_id` is its 0-based NODE_ID."""

    def __init__(self, node_id: int, base_url: str, timeout: float = 2.0,
                 admin_token: str | None = None):
        super().__init__(f"node{node_id + 1}", base_url, timeout, admin_token)
        self.node_id = node_id

    def events(self, since: int = 0, limit: int = 500) -> Result:
        return self.request("GET", "/events", params={"since": since, "limit": limit})

    def list_keys(self, prefix: str = "", cursor: str | None = None, limit: int = 50) -> Result:
        """One page of the store: `{"items": [...], "cursor": next or None}` (GET /kv)."""
        params: Json = {"prefix": prefix, "limit": limit}
        if cursor not in (None, ""):
            params["cursor"] = cursor
        return self.request("GET", "/kv", params=params)

    def get(self, key: str, context: list[int] | None = None) -> Result:
        params = {} if context is None else {"context": context_param(context)}
        # The node may hold the answer for CONTEXT_WAIT_S (2 s) until it has caught up.
        return self.request("GET", "/kv/" + quote(key, safe=""), params=params,
                            timeout=self.timeout + 3)

    def put(self, key: str, value: object, context: list[int] | None = None) -> Result:
        body: Json = {"value": value}
        if context is not None:
            body["context"] = list(context)
        return self.request("PUT", "/kv/" + quote(key, safe=""), json=body,
                            timeout=self.timeout + 3)

    def links(self) -> Result:
        return self.request("GET", "/admin/links", admin=True)

    def set_link(self, peer: int, delay_ms: int, paused: bool) -> Result:
        return self.request("POST", "/admin/links", admin=True,
                            json={"peer": peer, "delay_ms": int(delay_ms), "paused": bool(paused)})


class Prometheus(Service):
    """Prometheus's HTTP API: range queries for the history charts."""

    def __init__(self, base_url: str, timeout: float = 2.0):
        super().__init__("prometheus", base_url, timeout)

    def query_range(self, expr: str, start: float, end: float, step: float) -> Result:
        """`{"resultType": "matrix", "result": [...]}` or an ApiError."""
        body = self.request("GET", "/api/v1/query_range",
                            params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                    "step": f"{step:g}"})
        if isinstance(body, ApiError):
            return body
        if body.get("status") != "success" or not isinstance(body.get("data"), dict):
            return ApiError(self.name, f"query failed: {body.get('error', 'no data')}")
        return body["data"]


class Balancer(Service):
    """The grid balancer (SPEC section 3)."""

    def __init__(self, base_url: str, timeout: float = 2.0, admin_token: str | None = None):
        super().__init__("balancer", base_url, timeout, admin_token)

    def charge(self, vehicle_id: str, power_kw: float | None = None,
               duration_s: float | None = None) -> Result:
        body: Json = {"vehicle_id": vehicle_id}
        if power_kw is not None:
            body["power_kw"] = power_kw
        if duration_s is not None:
            body["duration_s"] = duration_s
        return self.request("POST", "/charge", json=body, timeout=self.timeout + 3)

    def end_session(self, session_id: str) -> Result:
        return self.request("DELETE", "/sessions/" + quote(session_id, safe=""))

    def set_strategy(self, strategy: str) -> Result:
        return self.request("POST", "/admin/strategy", admin=True, json={"strategy": strategy})


class Substation(Service):
    """One substation, read directly so its load shows even while the balancer is down."""


def fetch_all(calls: dict[str, Callable[[], Result]], workers: int = 8) -> dict[str, Result]:
    """Run independent calls in parallel, so one slow service does not stall the others."""
    if not calls:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}
