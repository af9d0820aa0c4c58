"""A small concurrent HTTP load generator: several processes x threads, keep-alive connections.

Several processes so the GIL of one Python process is not the ceiling; raw http.client instead of
requests because its per-request CPU cost is a fraction of requests' (the generator shares the
machine's cores with the services it measures, and every cycle it burns is taken from them).

Three modes: closed loop for a fixed time (throughput), paced at a fixed rate (background load),
and a fixed number of requests (fill a queue). Only requests that finish inside the measuring
window count; the warm-up before it lets connections and worker caches settle.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from urllib.parse import urlsplit

from bench.stats import percentile

START_DELAY_S = 1.0  # lets every process spawn and connect before the clock starts


@dataclass(frozen=True)
class Target:
    """One kind of request. `path` and `body` are templates: {w} worker index, {n} its counter."""

    base_url: str
    method: str = "GET"
    path: str = "/"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    ok_statuses: tuple[int, ...] = (200,)

    def render(self, worker: int, n: int) -> tuple[str, bytes | None]:
        path = self.path.format(w=worker, n=n)
        body = self.body.format(w=worker, n=n).encode() if self.body is not None else None
        return path, body


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    window_s: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.ok / self.window_s if self.window_s else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def merge(self, other: LoadResult) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.latencies_ms.extend(other.latencies_ms)


class Connection:
    """A keep-alive connection that reconnects after any error."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the request failed on the wire."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, data
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _thread_loop(target: Target, worker: int, start: float, window: tuple[float, float],
                 interval: float | None, count: int | None, out: LoadResult) -> None:
    conn = Connection(target.base_url)
    headers = dict(target.headers)
    n = 0
    next_at = start
    while time.time() < start:
        time.sleep(0.005)
    try:
        while True:
            if count is not None and n >= count:
                break
            if count is None and time.time() >= window[1]:
                break
            if interval is not None:  # paced: hold the schedule, catch up when behind
                next_at += interval
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)
            path, body = target.render(worker, n)
            n += 1
            t0 = time.perf_counter()
            status, _ = conn.request(target.method, path, body, headers)
            elapsed_ms = (time.perf_counter() - t0) * 1000
            done = time.time()
            if count is None and not window[0] <= done <= window[1]:
                continue
            out.statuses[status] += 1
            if status in target.ok_statuses:
                out.ok += 1
                out.latencies_ms.append(elapsed_ms)
            else:
                out.errors += 1
    finally:
        conn.close()


def _process_main(target: Target, first_worker: int, threads: int, start: float,
                  window: tuple[float, float], interval: float | None,
                  count_per_thread: int | None) -> LoadResult:
    results = [LoadResult() for _ in range(threads)]
    pool = [threading.Thread(target=_thread_loop, daemon=True,
                             args=(target, first_worker + i, start, window, interval,
                                   count_per_thread, results[i]))
            for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    merged = LoadResult()
    for result in results:
        merged.merge(result)
    return merged


def _run(target: Target, concurrency: int, processes: int, duration_s: float, warmup_s: float,
         rate: float | None, total: int | None) -> LoadResult:
    processes = max(1, min(processes, concurrency))
    per_process = [concurrency // processes + (1 if i < concurrency % processes else 0)
                   for i in range(processes)]
    start = time.time() + START_DELAY_S
    window = (start + warmup_s, start + warmup_s + duration_s)
    interval = concurrency / rate if rate else None
    count_per_thread = -(-total // concurrency) if total else None
    merged = LoadResult()
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        futures, first = [], 0
        for threads in per_process:
            futures.append(pool.submit(_process_main, target, first, threads, start, window,
                                       interval, count_per_thread))
            first += threads
        for future in futures:
            merged.merge(future.result())
    merged.window_s = duration_s if total is None else time.time() - start
    return merged


def run_closed(target: Target, concurrency: int, duration_s: float, warmup_s: float = 1.0,
               processes: int = 2) -> LoadResult:
    """As fast as `concurrency` connections go, each waiting for its previous answer."""
    return _run(target, concurrency, processes, duration_s, warmup_s, None, None)


def run_paced(target: Target, rate: float, duration_s: float, concurrency: int = 8,
              processes: int = 2) -> LoadResult:
    """About `rate` requests/s in total, spread over `concurrency` connections."""
    return _run(target, concurrency, processes, duration_s, 0.0, rate, None)


def run_count(target: Target, total: int, concurrency: int = 16, processes: int = 2) -> LoadResult:
    """About `total` requests (rounded up to a multiple of `concurrency`), as fast as possible."""
    return _run(target, concurrency, processes, 0.0, 0.0, None, total)
