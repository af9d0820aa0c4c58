"""KV figures: PUT throughput vs the minimal app, time until a write is visible everywhere, and
how fast a paused link's backlog drains."""

from __future__ import annotations

import json
import threading
import time

import requests

from bench.loadgen import (
    START_DELAY_S,
    Connection,
    LoadResult,
    Target,
    run_closed,
    run_count,
    run_paced,
)
from bench.scrape import metric_sum
from bench.settings import BenchSettings
from bench.stats import median_ratio, percentile
from common.procs import wait_until

JSON = {"Content-Type": "application/json"}
POLL_S = 0.001  # visibility polling interval: the resolution of the visibility figure
VISIBLE_TIMEOUT_S = 5.0


def put_target(base_url: str, prefix: str) -> Target:
    """PUT of a small JSON value to a fresh key per request (same for node and baseline)."""
    return Target(base_url, "PUT", f"/kv/{prefix}-{{w}}-{{n}}", '{{"value": {{"n": {n}}}}}')


def latency_summary(result: LoadResult) -> dict:
    return {"p50_ms": result.percentile(50), "p90_ms": result.percentile(90),
            "p99_ms": result.percentile(99)}


def ab_rounds(a: Target, b: Target, s: BenchSettings, log) -> tuple[list[LoadResult],
                                                                      list[LoadResult]]:
    """Closed-loop runs of A and B, alternating which goes first, `s.rounds` times."""
    runs_a, runs_b = [], []
    for r in range(s.rounds):
        order = [(a, runs_a), (b, runs_b)] if r % 2 == 0 else [(b, runs_b), (a, runs_a)]
        for target, runs in order:
            result = run_closed(target, s.concurrency, s.duration_s, s.warmup_s, s.processes)
            runs.append(result)
            log(f"  round {r + 1}: {target.base_url}{target.path.split('{')[0]}: "
                f"{result.throughput:.0f} req/s, p50 {result.percentile(50):.1f} ms, "
                f"errors {result.errors}")
    return runs_a, runs_b


def side_summary(runs: list[LoadResult]) -> dict:
    merged = LoadResult()
    for run in runs:
        merged.merge(run)
    return {"throughput_per_s": [round(r.throughput, 1) for r in runs],
            "errors": merged.errors, **latency_summary(merged)}


def throughput(node_url: str, baseline_url: str, s: BenchSettings, log) -> dict:
    log("KV: PUT throughput at node1 (replication on) vs the minimal Flask+Redis app")
    node_runs, base_runs = ab_rounds(put_target(node_url, "tput"), put_target(baseline_url, "tput"),
                                     s, log)
    return {
        "node": side_summary(node_runs),
        "baseline": side_summary(base_runs),
        "ratio": median_ratio([r.throughput for r in node_runs],
                              [r.throughput for r in base_runs]),
    }


def _visible_once(writer: Connection, readers: list[Connection], key: str, n: int) -> float | None:
    """ms from sending the PUT until every reader returns the value; None on error/timeout."""
    t0 = time.perf_counter()
    status, _ = writer.request("PUT", f"/kv/{key}", json.dumps({"value": n}).encode(), JSON)
    if status != 200:
        return None
    pending = list(readers)
    while pending:
        for reader in list(pending):
            status, data = reader.request("GET", f"/kv/{key}")
            if status == 200 and json.loads(data).get("value") == n:
                pending.remove(reader)
        if not pending:
            break
        if time.perf_counter() - t0 > VISIBLE_TIMEOUT_S:
            return None
        time.sleep(POLL_S)
    return (time.perf_counter() - t0) * 1000


def visibility_probe(node_urls: list[str], tag: str, samples: int | None = None,
                     seconds: float | None = None, gap_s: float = 0.02,
                     keep_times: bool = False) -> dict:
    """Sequential writes at node1, each polled on every other node until it shows up.
    `keep_times` adds every sample (`times_ms`), e.g. to merge blocks before percentiles."""
    writer = Connection(node_urls[0])
    readers = [Connection(url) for url in node_urls[1:]]
    times, failed, i = [], 0, 0
    deadline = time.monotonic() + seconds if seconds else float("inf")
    try:
        while (samples is None or i < samples) and time.monotonic() < deadline:
            ms = _visible_once(writer, readers, f"vis-{tag}-{i}", i)
            i += 1
            if ms is None:
                failed += 1
            else:
                times.append(ms)
            time.sleep(gap_s)
    finally:
        for conn in (writer, *readers):
            conn.close()
    summary = {"samples": len(times), "failed": failed, "p50_ms": percentile(times, 50),
               "p99_ms": percentile(times, 99), "max_ms": max(times) if times else float("nan")}
    return {**summary, "times_ms": times} if keep_times else summary


def visibility(node_urls: list[str], max_throughput: float, s: BenchSettings, log) -> dict:
    log("KV: time until a write at node1 is visible on every node")
    light = visibility_probe(node_urls, "light", samples=s.visibility_samples)
    log(f"  light load: p50 {light['p50_ms']:.1f} ms, p99 {light['p99_ms']:.1f} ms "
        f"({light['samples']} writes)")
    rate = 0.5 * max_throughput
    load: dict[str, LoadResult] = {}
    background = threading.Thread(target=lambda: load.update(bg=run_paced(
        put_target(node_urls[0], "bg"), rate, s.loaded_s + 1.0, s.concurrency, s.processes)))
    background.start()
    time.sleep(START_DELAY_S + 0.5)  # the paced load starts START_DELAY_S after the call
    loaded = visibility_probe(node_urls, "loaded", seconds=s.loaded_s)
    background.join()
    achieved = load["bg"].throughput
    log(f"  at 50 % of max ({rate:.0f} req/s asked, {achieved:.0f} achieved): "
        f"p50 {loaded['p50_ms']:.1f} ms, p99 {loaded['p99_ms']:.1f} ms "
        f"({loaded['samples']} writes)")
    return {"poll_interval_ms": POLL_S * 1000, "light": light,
            "half_load": {**loaded, "target_rate_per_s": rate, "achieved_rate_per_s": achieved,
                          "background_errors": load["bg"].errors}}


def clock_at(url: str) -> list[int]:
    """The node's vector clock now (GET of a key that never exists: 404 carries the clock)."""
    resp = requests.get(url + "/kv/__bench_clock_probe", timeout=5)
    return resp.json()["vector_clock"]


def set_link(url: str, token: str, peer: int, paused: bool) -> None:
    resp = requests.post(url + "/admin/links", json={"peer": peer, "paused": paused},
                         headers={"X-Admin-Token": token}, timeout=5)
    resp.raise_for_status()


def drain(node_urls: list[str], admin_token: str, s: BenchSettings, log) -> dict:
    """Pause node1 -> node2, queue `drain_messages` writes, release, time node2 catching up."""
    log(f"KV: drain of {s.drain_messages} writes queued behind a paused link node1 -> node2")
    node1, node2 = node_urls[0], node_urls[1]
    set_link(node1, admin_token, 1, True)
    try:
        fill = run_count(put_target(node1, "drain"), s.drain_messages, s.concurrency, s.processes)
        target = clock_at(node1)[0]
        queued = target - clock_at(node2)[0]
        depth = metric_sum(node1, "kv_outbox_messages", {"peer": "1"}, log=log)
        t0 = time.perf_counter()
        set_link(node1, admin_token, 1, False)
        wait_until(lambda: clock_at(node2)[0] >= target, timeout=300, interval=0.005,
                   message="node2 to catch up with node1")
        elapsed = time.perf_counter() - t0
    finally:
        set_link(node1, admin_token, 1, False)
    rate = queued / elapsed if elapsed else float("nan")
    log(f"  {queued} messages (outbox {depth:.0f}) delivered in {elapsed:.2f} s: "
        f"{rate:.0f} msg/s  (filled at {fill.throughput:.0f} writes/s)")
    return {"queued": queued, "outbox_depth": depth, "drain_s": elapsed, "rate_per_s": rate,
            "fill_rate_per_s": fill.throughput, "fill_errors": fill.errors}


def _load_keys(node_urls: list[str], redis_url: str, count: int) -> None:
    """`count` keys written at node1 straight through its local-write script, pipelined (the
    HTTP path is measured elsewhere; this only fills the stores fast)."""
    from nodes.config import NodeConfig
    from nodes.store import NodeStore, outbox_key, wake_channel

    cfg = NodeConfig(node_id=0, node_urls=tuple(node_urls), redis_url=redis_url,
                     cluster_token="-", admin_token="-", start_senders=False)
    store = NodeStore(cfg)
    peers = cfg.peers
    for start in range(0, count, 2000):
        pipe = store.redis.pipeline(transaction=False)
        for i in range(start, min(count, start + 2000)):
            value = json.dumps({"n": i})
            store.scripts["local_write"](
                keys=[outbox_key(p) for p in peers],
                args=[cfg.n, 0, f"ae-{i:07d}", value, cfg.log_max, value, cfg.outbox_max,
                      *[a for p in peers for a in (p, wake_channel(p))]], client=pipe)
        pipe.execute()


def anti_entropy(node_urls: list[str], node1_redis_url: str, cluster_token: str,
                 admin_token: str, s: BenchSettings, log) -> dict:
    """An anti-entropy round between agreeing stores vs copying node1's whole store."""
    count = 20_000 if s.quick else 100_000
    log(f"KV: anti-entropy between agreeing {count}-key stores vs copying the store")
    base = clock_at(node_urls[0])[0]
    _load_keys(node_urls, node1_redis_url, count)
    target = base + count
    wait_until(lambda: all(clock_at(u)[0] >= target for u in node_urls), timeout=600,
               interval=0.2, message="every node to hold the keys")
    rounds = []
    for _ in range(s.rounds):
        resp = requests.post(node_urls[1] + "/admin/sync", headers={"X-Admin-Token": admin_token},
                             timeout=300)
        resp.raise_for_status()
        rounds.append(resp.json()["sync"]["0"])
    assert all(r["result"] == "ok" and r["keys_repaired"] == 0 for r in rounds), rounds
    copies = []
    body = json.dumps({"from": 1, "vc": [0] * len(node_urls), "top": []}).encode()
    for _ in range(s.rounds):
        t0 = time.perf_counter()
        resp = requests.post(node_urls[0] + "/sync/digest", data=body, timeout=300,
                             headers={"X-Cluster-Token": cluster_token, **JSON})
        resp.raise_for_status()
        copies.append({"ms": (time.perf_counter() - t0) * 1000,
                       "bytes": len(body) + len(resp.content)})
    ae_ms = percentile([r["duration_ms"] for r in rounds], 50)
    ae_bytes = percentile([r["bytes_sent"] + r["bytes_received"] for r in rounds], 50)
    copy_ms = percentile([c["ms"] for c in copies], 50)
    copy_bytes = percentile([c["bytes"] for c in copies], 50)
    log(f"  round: {ae_ms:.1f} ms, {ae_bytes:.0f} bytes; full copy: {copy_ms:.0f} ms, "
        f"{copy_bytes:.0f} bytes; ratios {ae_ms / copy_ms:.4f} (time), "
        f"{ae_bytes / copy_bytes:.6f} (bytes)")
    return {"keys": count, "round_ms": ae_ms, "round_bytes": ae_bytes, "copy_ms": copy_ms,
            "copy_bytes": copy_bytes, "time_ratio": ae_ms / copy_ms,
            "bytes_ratio": ae_bytes / copy_bytes}
