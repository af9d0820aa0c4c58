"""Fill a running stack with data, for the panel's large-size test and its screenshots.

Writes `n` distinct keys round-robin over the nodes through the real API (PUT /kv/<key>), so
every node's log gets about `n` deliveries (its own writes plus the replicated ones), some of
them buffered when a link is slow.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter


def put_keys(node_urls: list[str], n: int, prefix: str = "load:", threads: int = 16,
             timeout: float = 10.0, tries: int = 3, errors: list[str] | None = None) -> int:
    """PUT keys prefix000000.. at the nodes in turn; the number acknowledged (200).

    A PUT that failed (timeout, connection error, 5xx on a busy machine) is sent again, up to
    `tries` times: filling the store is the point, and a repeated PUT only makes a newer
    version. The last error of every key given up on goes to `errors`."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=len(node_urls), pool_maxsize=threads))

    def put(i: int) -> bool:
        url = f"{node_urls[i % len(node_urls)]}/kv/{prefix}{i:06d}"
        error = ""
        for _ in range(tries):
            try:
                resp = session.put(url, json={"value": i}, timeout=timeout)
            except requests.RequestException as exc:
                error = f"{url}: {type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 200:
                return True
            error = f"{url}: HTTP {resp.status_code} {resp.text[:200]}"
        if errors is not None:
            errors.append(error)
        return False

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(put, range(n), chunksize=64))
