"""The end of a run: wait (bounded) for the nodes to converge, then read their public state.

Only public HTTP: each node's /status, its whole delivery log (/events, paged), every key the
workload touched (GET /kv/<key>, which shows siblings and versions; plus /kv?prefix= pages when
the node has that endpoint), and each substation's capacity from its /status.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from stack.services import NODES, SUBSTATION_NAMES

TIMEOUT_S = 5.0
EVENTS_PAGE = 10_000


def _get(url: str, **params) -> tuple[int, Any]:
    resp = requests.get(url, params=params or None, timeout=TIMEOUT_S)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {"error": resp.text[:200]}


def settled(statuses: dict[str, dict]) -> bool:
    clocks = set()
    for status in statuses.values():
        if "vector_clock" not in status:
            return False
        buffered = status.get("buffered", len(status.get("buffer") or []))
        if buffered or any((status.get("outbox") or {}).values()):
            return False
        if status.get("state") not in (None, "serving", "ready", "ok"):
            return False
        clocks.add(tuple(status["vector_clock"]))
    return len(clocks) == 1


def statuses(urls: dict[str, str]) -> dict[str, dict]:
    out = {}
    for name, url in urls.items():
        try:
            out[name] = _get(f"{url}/status")[1]
        except requests.RequestException as exc:
            out[name] = {"error": str(exc)[:200]}
    return out


def await_convergence(urls: dict[str, str], timeout: float) -> float | None:
    """Seconds until every node reports the same clock and nothing pending; None if never."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if settled(statuses(urls)):
            return round(time.monotonic() - t0, 2)
        time.sleep(0.5)
    return None


def events(url: str) -> list[dict]:
    out, since = [], 0
    while True:
        status, body = _get(f"{url}/events", since=since, limit=EVENTS_PAGE)
        page = body.get("events", []) if status == 200 else []
        if not page:
            return out
        out += page
        since = body.get("next", page[-1]["seq"])


def listed_keys(url: str) -> set[str]:
    """Keys from GET /kv?prefix= pages, when the node has that endpoint."""
    keys: set[str] = set()
    cursor: Any = "0"
    for _ in range(10_000):
        try:
            status, body = _get(f"{url}/kv", prefix="", cursor=cursor, limit=1000)
        except requests.RequestException:
            return keys
        if status != 200 or "items" not in body:
            return keys
        keys |= {item["key"] for item in body["items"] if isinstance(item, dict)}
        cursor = body.get("cursor")
        if cursor in (None, "0", 0, ""):
            return keys
    return keys


def collect(node_urls: dict[str, str], sub_urls: dict[str, str], keys: set[str],
            wall_start: float, converge_timeout: float) -> dict[str, Any]:
    converged_after = await_convergence(node_urls, converge_timeout)
    final: dict[str, Any] = {"nodes": list(NODES), "wall_start": wall_start,
                             "converged_after_s": converged_after}
    final["status"] = statuses(node_urls)
    final["events"] = {}
    final["store"] = {}
    for name, url in node_urls.items():
        store_keys = final["status"].get(name, {}).get("store")  # older /status lists them
        keys_here = keys | (set(store_keys) if isinstance(store_keys, dict) else set())
        try:
            final["events"][name] = events(url)
            all_keys = keys_here | listed_keys(url)
        except requests.RequestException:
            final["events"][name] = []
            all_keys = keys_here
        store = {}
        for key in sorted(all_keys):
            try:
                status, body = _get(f"{url}/kv/{key}")
            except requests.RequestException as exc:
                store[key] = {"error": str(exc)[:200], "siblings": []}
                continue
            store[key] = body if status == 200 else None
        final["store"][name] = store
    final["substations"] = {}
    for name in SUBSTATION_NAMES:
        try:
            final["substations"][name] = _get(f"{sub_urls[name]}/status")[1]
        except requests.RequestException as exc:
            final["substations"][name] = {"error": str(exc)[:200]}
    return final
