"""HTTP to substations: keep-alive connection pools per worker, per-try timeouts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3

from grid.wire import DEADLINE_HEADER, NO_CAPACITY, RESERVATION_HEADER, SESSION_HEADER

ADMITTED, REFUSED, ERROR = "admitted", "refused", "error"


@dataclass(frozen=True)
class Attempt:
    substation: str
    outcome: str  # admitted | refused | error
    body: dict[str, Any] | None = None
    retry_after_s: int | None = None  # refused: the substation's hint
    detail: str = ""


def classify(name: str, status: int, body: Any) -> Attempt:
    """A substation's answer to POST /charge. A capacity refusal is not a fault."""
    if status == 200 and isinstance(body, dict) and body.get("session_id"):
        return Attempt(name, ADMITTED, body)
    if status == 503 and isinstance(body, dict) and body.get("error") == NO_CAPACITY:
        hint = body.get("retry_after")
        retry = hint if isinstance(hint, int) and not isinstance(hint, bool) else None
        return Attempt(name, REFUSED, body, retry, "no capacity")
    return Attempt(name, ERROR, None, None, f"HTTP {status}")


class UpstreamError(Exception):
    """A substation could not be reached or did not answer in time."""


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Upstream:
    """Keep-alive connection pools straight on urllib3: `requests` costs ~1 ms more per call,
    which is most of what the balancer adds to a charge. No proxies or retries: substations
    are direct neighbours, and the router does its own failover."""

    def __init__(self, urls: dict[str, str], timeout_s: float, pool_size: int = 32):
        self.urls, self.timeout_s = dict(urls), timeout_s
        self.pools = {name: urllib3.connection_from_url(url, maxsize=pool_size, retries=False)
                      for name, url in self.urls.items()}

    def request(self, name: str, method: str, path: str, timeout_s: float,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        """One HTTP exchange; raises UpstreamError("timeout" | "connection error: ...")."""
        try:
            resp = self.pools[name].request(method, path, body=body, headers=headers,
                                            timeout=urllib3.Timeout(total=timeout_s))
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise UpstreamError("timeout") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(f"connection error: {type(exc).__name__}") from exc
        return Reply(resp.status, resp.data.decode("utf-8", "replace"))

    def charge(self, name: str, body: bytes, session_id: str, deadline_ms: int,
               reservation: str = "") -> Attempt:
        """POST /charge of the car's own JSON body, naming the session id this try would
        create; the substation drops it if it gets to it after `deadline_ms` (Redis time)."""
        headers = {"Content-Type": "application/json", DEADLINE_HEADER: str(deadline_ms),
                   SESSION_HEADER: session_id}
        if reservation:
            headers[RESERVATION_HEADER] = reservation
        try:
            reply = self.request(name, "POST", "/charge", self.timeout_s, body, headers)
        except UpstreamError as exc:
            return Attempt(name, ERROR, detail=str(exc))
        try:
            parsed = reply.json()
        except ValueError:
            parsed = None
        return classify(name, reply.status, parsed)

    def end(self, name: str, session_id: str) -> tuple[int, Any]:
        """Forward DELETE /sessions/<id>; (status, JSON body). Raises UpstreamError."""
        reply = self.request(name, "DELETE", f"/sessions/{session_id}", self.timeout_s)
        try:
            return reply.status, reply.json()
        except ValueError:
            return 502, {"error": f"{name} answered HTTP {reply.status} without JSON"}

    def get(self, name: str, path: str, timeout_s: float) -> Reply:
        return self.request(name, "GET", path, timeout_s)
