"""HTTP to substations: one pooled keep-alive requests.Session per worker, per-try timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from substations.wire import DEADLINE_HEADER, NO_CAPACITY, RESERVATION_HEADER

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


class Upstream:
    def __init__(self, urls: dict[str, str], timeout_s: float, pool_size: int = 32):
        self.urls, self.timeout_s = dict(urls), timeout_s
        self.session = requests.Session()
        # Substations are direct neighbours: no proxy/netrc lookups from the environment
        # (they cost ~0.5 ms per request and an HTTP_PROXY must not reroute internal calls).
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=max(4, len(urls)), pool_maxsize=pool_size,
                              max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def charge(self, name: str, payload: dict[str, Any], deadline_ms: int,
               reservation: str = "") -> Attempt:
        """POST /charge; the substation drops it if it gets to it after `deadline_ms`."""
        headers = {DEADLINE_HEADER: str(deadline_ms)}
        if reservation:
            headers[RESERVATION_HEADER] = reservation
        try:
            resp = self.session.post(self.urls[name] + "/charge", json=payload,
                                     headers=headers, timeout=self.timeout_s)
        except requests.Timeout:
            return Attempt(name, ERROR, detail="timeout")
        except requests.RequestException as exc:
            return Attempt(name, ERROR, detail=f"connection error: {type(exc).__name__}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        return classify(name, resp.status_code, body)

    def end(self, name: str, session_id: str) -> tuple[int, Any]:
        """Forward DELETE /sessions/<id>; (status, JSON body). Raises RequestException."""
        resp = self.session.delete(f"{self.urls[name]}/sessions/{session_id}",
                                   timeout=self.timeout_s)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return 502, {"error": f"{name} answered HTTP {resp.status_code} without JSON"}

    def get(self, name: str, path: str, timeout_s: float) -> requests.Response:
        return self.session.get(self.urls[name] + path, timeout=timeout_s)
