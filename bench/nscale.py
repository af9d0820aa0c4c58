"""N scaling: clusters of N = 3, 5, 7 real nodes (Gunicorn + own redis-server each) on this
machine, from the same service list as `make up` (`services(layout, n_nodes=N)`).

Per N: PUT throughput at node1, time until a write at node1 is visible on every node, replication
messages, batches and bytes per write, and CPU seconds per 1000 writes of the writing node and of
the others. Every cluster shares the same cores, so throughput at one node also pays for the
N - 1 peers' work: the growth of the cost per write is the figure that carries over.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import psutil
import redis

from bench.kv import clock_at, put_target, set_link, visibility_probe
from bench.loadgen import run_closed, run_count
from bench.scrape import metric_sum
from bench.settings import BenchSettings
from common.procs import Abort, Proc, free_port, wait_until
from common.redis_bin import redis_server_path
from stack.health import healthy
from stack.services import (
    SPEC_PORTS,
    TUNABLES,
    Layout,
    Service,
    node_names,
    node_redis_names,
    services,
)

SIZES = (3, 5, 7)
WORKERS = 1  # Gunicorn workers per node: 7 nodes x 2 workers would crowd two cores
OUTBOX = "kv:outbox:{peer}"
BYTES_WRITES = 200  # writes held behind paused links to count the bytes queued per write
# Writes at every other node before the bytes are counted, so no clock entry is a lone 0 and the
# clock's size is that of a cluster where every node takes writes (entries of 3-4 digits).
PEER_WRITES = 300


def throughput_runs(s: BenchSettings) -> int:
    return 1 if s.quick else 3


class Cluster:
    """N KV nodes and their Redis servers as child processes on free ports."""

    def __init__(self, workdir: Path, n: int):
        self.n = n
        self.workdir = workdir
        self.admin_token = secrets.token_urlsafe(24)
        names = [*SPEC_PORTS, *node_names(n), *node_redis_names(n)]
        ports: dict[str, int] = {}
        for name in dict.fromkeys(names):
            ports[name] = free_port()
        self.layout = Layout(ports=ports, cluster_token=secrets.token_urlsafe(24),
                             admin_token=self.admin_token, data_dir=str(workdir / "data"),
                             tunables={**TUNABLES, "WEB_CONCURRENCY": str(WORKERS),
                                       "LOG_LEVEL": "warning"},
                             redis_server=redis_server_path())
        by_name = {svc.name: svc for svc in services(self.layout, n_nodes=n)}
        self.redis_svcs = [by_name[name] for name in node_redis_names(n)]
        self.node_svcs = [by_name[name] for name in node_names(n)]
        self.procs: dict[str, Proc] = {}

    @property
    def node_urls(self) -> list[str]:
        return [self.layout.url(svc.name) for svc in self.node_svcs]

    def redis_client(self, i: int) -> redis.Redis:
        return redis.Redis.from_url(self.layout.redis_url(self.redis_svcs[i].name),
                                    decode_responses=True)

    def _spawn(self, svc: Service) -> None:
        if svc.data_dir:
            Path(svc.data_dir).mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        proc = Proc(svc.name, list(svc.argv), env=svc.env,
                    log_path=self.workdir / "logs" / f"{svc.name}.log")
        proc.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.procs[svc.name] = proc.start()

    def _wait(self, svc: Service) -> None:
        proc = self.procs[svc.name]

        def ready() -> bool:
            if not proc.running:
                raise Abort(f"{svc.name} exited:\n{proc.log_tail()}")
            return healthy(svc)

        wait_until(ready, timeout=60, interval=0.1, message=f"{svc.name} healthy")

    def start(self) -> Cluster:
        try:
            for wave in (self.redis_svcs, self.node_svcs):
                for svc in wave:
                    self._spawn(svc)
                for svc in wave:
                    self._wait(svc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.signal(signal.SIGTERM)
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(8)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(5)

    def cpu_seconds(self) -> dict[str, float]:
        """user + system CPU seconds so far of each node's and each Redis's process tree."""
        out = {}
        for name, proc in self.procs.items():
            total = 0.0
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(proc.popen.pid)
                for p in (root, *root.children(recursive=True)):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        times = p.cpu_times()
                        total += times.user + times.system
            out[name] = total
        return out

    def wait_replicated(self, timeout: float = 120.0) -> None:
        """Until every node has delivered every write made so far (all clocks equal)."""
        wait_until(lambda: len({tuple(clock_at(url)) for url in self.node_urls}) == 1,
                   timeout=timeout, interval=0.05, message=f"N={self.n}: clocks to converge")


def _counters(cluster: Cluster) -> dict[str, float]:
    urls = cluster.node_urls
    return {
        "local_writes": metric_sum(urls[0], "kv_deliveries_total", {"kind": "local"}),
        "replicated": sum(metric_sum(url, "kv_deliveries_total", {"kind": "replicated"})
                          for url in urls[1:]),
        "batches": metric_sum(urls[0], "kv_replication_batches_total", {"outcome": "ok"}),
    }


def _set_links(cluster: Cluster, paused: bool) -> None:
    for peer in range(1, cluster.n):
        set_link(cluster.node_urls[0], cluster.admin_token, peer, paused)


def wire_bytes(cluster: Cluster, writes: int, s: BenchSettings) -> dict:
    """Bytes node1 queues for its peers per write: the messages of `writes` PUTs held behind
    paused links, read from node1's outboxes (the /replicate body less its batch envelope)."""
    client = cluster.redis_client(0)
    _set_links(cluster, True)
    try:
        fill = run_count(put_target(cluster.node_urls[0], "bytes"), writes, s.concurrency,
                         s.processes)
        queued = {peer: client.lrange(OUTBOX.format(peer=peer), 0, -1)
                  for peer in range(1, cluster.n)}
    finally:
        _set_links(cluster, False)
    messages = [m for entries in queued.values() for m in entries]
    sample = json.loads(messages[-1])
    return {
        "writes": fill.ok,
        "messages": len(messages),
        "messages_per_write": len(messages) / fill.ok if fill.ok else float("nan"),
        "bytes_per_write": sum(len(m.encode()) for m in messages) / fill.ok,
        "bytes_per_message": sum(len(m.encode()) for m in messages) / len(messages),
        "clock_bytes": len(json.dumps(sample["vc"], separators=(",", ":"))),
        "clock_entries": len(sample["vc"]),
    }


def measure(cluster: Cluster, s: BenchSettings, log) -> dict:
    urls = cluster.node_urls
    target = put_target(urls[0], f"n{cluster.n}")
    before, cpu_before = _counters(cluster), cluster.cpu_seconds()
    runs = [run_closed(target, s.concurrency, s.duration_s, s.warmup_s, s.processes)
            for _ in range(throughput_runs(s))]
    cluster.wait_replicated()
    after, cpu_after = _counters(cluster), cluster.cpu_seconds()
    writes = after["local_writes"] - before["local_writes"]
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    per_k = 1000 / writes if writes else float("nan")
    nodes = [svc.name for svc in cluster.node_svcs]
    redises = [svc.name for svc in cluster.redis_svcs]
    throughputs = [round(r.throughput, 1) for r in runs]
    log(f"  N={cluster.n}: {throughputs} PUT/s at node1, errors {sum(r.errors for r in runs)}")
    vis = visibility_probe(urls, f"n{cluster.n}", samples=s.visibility_samples)
    log(f"  N={cluster.n}: visible on all {cluster.n} nodes p50 {vis['p50_ms']:.1f} ms, "
        f"p99 {vis['p99_ms']:.1f} ms ({vis['samples']} writes, {vis['failed']} failed)")
    for url in urls[1:]:
        run_count(put_target(url, "peer"), PEER_WRITES, s.concurrency, s.processes)
    cluster.wait_replicated()
    size = wire_bytes(cluster, BYTES_WRITES, s)
    cluster.wait_replicated()
    log(f"  N={cluster.n}: {size['messages_per_write']:.2f} messages, "
        f"{size['bytes_per_write']:.0f} bytes per write; clock {size['clock_bytes']} bytes")
    return {
        "n": cluster.n,
        "throughput_per_s": throughputs,
        "errors": sum(r.errors for r in runs),
        "p50_ms": runs[-1].percentile(50),
        "visibility": vis,
        "writes_counted": writes,
        "messages_per_write": (after["replicated"] - before["replicated"]) / writes,
        "batches_per_write": (after["batches"] - before["batches"]) / writes,
        "wire": size,
        "cpu_s_per_1000_writes": {
            "writer_node": cpu[nodes[0]] * per_k,
            "writer_redis": cpu[redises[0]] * per_k,
            "other_node_mean": sum(cpu[n] for n in nodes[1:]) / (cluster.n - 1) * per_k,
            "other_redis_mean": sum(cpu[r] for r in redises[1:]) / (cluster.n - 1) * per_k,
            "cluster_total": sum(cpu.values()) * per_k,
        },
    }


def run(workdir: Path, s: BenchSettings, log, sizes: tuple[int, ...] = SIZES) -> dict:
    log(f"N scaling: clusters of {', '.join(map(str, sizes))} nodes, {WORKERS} Gunicorn worker "
        "each, one at a time on the same cores")
    rows = []
    for n in sizes:
        cluster = Cluster(workdir / f"n{n}", n)
        try:
            t0 = time.monotonic()
            cluster.start()
            log(f"  N={n}: {n} nodes + {n} redis-servers healthy in "
                f"{time.monotonic() - t0:.1f} s")
            rows.append(measure(cluster, s, log))
        finally:
            cluster.stop()
    base = rows[0]
    for row in rows:
        row["throughput_vs_first"] = (_median(row["throughput_per_s"])
                                      / _median(base["throughput_per_s"]))
    return {"workers_per_node": WORKERS, "sizes": list(sizes), "rows": rows,
            "growth": growth(rows)}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def growth(rows: list[dict]) -> dict:
    """Per extra node: how much each per-write cost grows (least-squares slope over N)."""
    ns = [float(r["n"]) for r in rows]
    return {
        "messages_per_write_per_node": _slope(ns, [r["messages_per_write"] for r in rows]),
        "bytes_per_write_per_node": _slope(ns, [r["wire"]["bytes_per_write"] for r in rows]),
        "clock_bytes_per_node": _slope(ns, [r["wire"]["clock_bytes"] for r in rows]),
        "cluster_cpu_ms_per_write_per_node": _slope(
            ns, [r["cpu_s_per_1000_writes"]["cluster_total"] for r in rows]),
    }


def table_rows(result: dict) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows for the bench table, one per figure, N side by side."""
    rows = result["rows"]
    ns = "/".join(str(r["n"]) for r in rows)

    def join(values, digits=1):
        return " / ".join(f"{v:.{digits}f}" for v in values)

    cpu = [r["cpu_s_per_1000_writes"] for r in rows]
    return [
        (f"N={ns}: PUT/s at node1 (median)", join([_median(r["throughput_per_s"]) for r in rows],
                                                  0), ""),
        (f"N={ns}: visible on every node p50 ms", join([r["visibility"]["p50_ms"] for r in rows]),
         ""),
        (f"N={ns}: visible on every node p99 ms", join([r["visibility"]["p99_ms"] for r in rows]),
         ""),
        (f"N={ns}: replication messages per write", join([r["messages_per_write"] for r in rows],
                                                         2), "N - 1 (expected)"),
        (f"N={ns}: /replicate batches per write (loaded)",
         join([r["batches_per_write"] for r in rows], 3), ""),
        (f"N={ns}: replication bytes per write", join([r["wire"]["bytes_per_write"] for r in rows],
                                                      0), "O(N) x (const + O(N))"),
        (f"N={ns}: vector clock bytes in a message",
         join([r["wire"]["clock_bytes"] for r in rows], 0), "O(N)"),
        (f"N={ns}: CPU s / 1000 writes, writer node", join([c["writer_node"] for c in cpu], 2), ""),
        (f"N={ns}: CPU s / 1000 writes, each other node",
         join([c["other_node_mean"] for c in cpu], 2), ""),
        (f"N={ns}: CPU s / 1000 writes, whole cluster",
         join([c["cluster_total"] for c in cpu], 2), "O(N)"),
    ]


def plot(result: dict, path: Path) -> Path:
    """Per-write costs over N (left) and throughput and visibility over N (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    ns = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    first = rows[0]
    scaled = {
        "replication messages / write": [r["messages_per_write"] for r in rows],
        "replication bytes / write": [r["wire"]["bytes_per_write"] for r in rows],
        "vector clock bytes / message": [r["wire"]["clock_bytes"] for r in rows],
        "cluster CPU s / 1000 writes": [r["cpu_s_per_1000_writes"]["cluster_total"]
                                        for r in rows],
        "writer node CPU s / 1000 writes": [r["cpu_s_per_1000_writes"]["writer_node"]
                                            for r in rows],
    }
    for label, values in scaled.items():
        left.plot(ns, [v / values[0] for v in values], marker="o", label=label)
    left.plot(ns, [(n - 1) / (first["n"] - 1) for n in ns], linestyle="--", color="black",
              label="(N - 1) / (N0 - 1): linear in N")
    left.set_xticks(ns)
    left.set_xlabel("N (nodes)")
    left.set_ylabel(f"relative to N = {first['n']}")
    left.set_title("Cost per write, relative to the smallest cluster")
    left.legend(fontsize=8)
    right.plot(ns, [_median(r["throughput_per_s"]) for r in rows], marker="o", color="#1f77b4",
               label="PUT/s at node1")
    right.set_xticks(ns)
    right.set_xlabel("N (nodes)")
    right.set_ylabel("PUT/s at node1 (all nodes on the same cores)")
    twin = right.twinx()
    twin.plot(ns, [r["visibility"]["p50_ms"] for r in rows], marker="s", color="#2ca02c",
              label="visible everywhere p50")
    twin.plot(ns, [r["visibility"]["p99_ms"] for r in rows], marker="s", color="#d62728",
              label="visible everywhere p99")
    twin.set_ylabel("ms until a write is visible on every node")
    right.set_title("Throughput at one node and visibility")
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = right.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    right.legend(handles, labels, fontsize=8, loc="upper center")
    fig.suptitle(f"GridClock N scaling ({result['workers_per_node']} Gunicorn worker per node, "
                 "every node on the same cores)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
