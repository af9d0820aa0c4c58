"""N scaling: clusters of N = 3, 5, 7 real nodes (Gunicorn + own redis-server each) on this
machine, from the same service list as `make up` (`services(layout, n_nodes=N)`).

Per N: PUT throughput at node1 (and its ratio to N = 3, median of per-round ratios, the
clusters' order alternating between rounds), time until a write at node1 is visible on every
node, replication messages, batches and bytes per write, and CPU seconds per 1000 writes of the
writing node, its Redis, the others and the whole cluster. All clusters share the same cores,
so throughput at one node also pays for the N - 1 peers' work: the growth of the cost per write
is the figure that carries over to a cluster with a machine per node.
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
from bench.stats import median_ratio, percentile
from common.procs import Abort, Proc, free_port, wait_until
from common.redis_bin import redis_server_path
from nodes.store import outbox_key
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
BYTES_WRITES = 200  # writes held behind paused links to count the bytes queued per write
# Writes at every other node before the bytes are counted, so no clock entry is a lone 0 and the
# clock's size is that of a cluster where every node takes writes (entries of 3-4 digits).
PEER_WRITES = 100




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
        queued = {peer: client.lrange(outbox_key(peer), 0, -1)
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


class Tally:
    """Writes, replication counters and CPU seconds of one cluster, summed over its rounds."""

    def __init__(self, cluster: Cluster, idle_cpu_per_s: dict[str, float]):
        self.cluster = cluster
        self.idle = idle_cpu_per_s  # per process: background work (lock renewals, pings)
        self.totals: dict[str, float] = {}
        self.runs: list = []

    def measure_round(self, s: BenchSettings) -> float:
        """One closed-loop PUT run at node1, counted until every peer has every write; CPU is
        what the processes used above their idle rate during the window."""
        cluster = self.cluster
        before, cpu_before, t0 = _counters(cluster), cluster.cpu_seconds(), time.monotonic()
        result = run_closed(put_target(cluster.node_urls[0], f"n{cluster.n}"), s.concurrency,
                            s.duration_s, s.warmup_s, s.processes)
        cluster.wait_replicated()
        after, cpu_after = _counters(cluster), cluster.cpu_seconds()
        window = time.monotonic() - t0
        for key in after:
            self.totals[key] = self.totals.get(key, 0.0) + after[key] - before[key]
        for name in cpu_after:
            used = cpu_after[name] - cpu_before[name] - self.idle.get(name, 0.0) * window
            self.totals[f"cpu:{name}"] = self.totals.get(f"cpu:{name}", 0.0) + max(0.0, used)
        self.runs.append(result)
        return result.throughput

    def summary(self) -> dict:
        cluster, totals = self.cluster, self.totals
        writes = totals["local_writes"]
        per_k = 1000 / writes if writes else float("nan")
        cpu = {k[4:]: v for k, v in totals.items() if k.startswith("cpu:")}
        nodes = [svc.name for svc in cluster.node_svcs]
        redises = [svc.name for svc in cluster.redis_svcs]
        peers = cluster.n - 1
        return {
            "n": cluster.n,
            "throughput_per_s": [round(r.throughput, 1) for r in self.runs],
            "errors": sum(r.errors for r in self.runs),
            "writes_counted": writes,
            "messages_per_write": totals["replicated"] / writes,
            "batches_per_write": totals["batches"] / writes,
            "cpu_s_per_1000_writes": {
                "writer_node": cpu[nodes[0]] * per_k,
                "writer_redis": cpu[redises[0]] * per_k,
                "other_node_mean": sum(cpu[n] for n in nodes[1:]) / peers * per_k,
                "other_redis_mean": sum(cpu[r] for r in redises[1:]) / peers * per_k,
                "cluster_total": sum(cpu.values()) * per_k,
            },
        }


def idle_cpu(clusters: list[Cluster], seconds: float) -> dict[int, dict[str, float]]:
    """CPU seconds per second each process uses with no load (all clusters idle at once)."""
    before = {c.n: c.cpu_seconds() for c in clusters}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {c.n: {name: max(0.0, used - before[c.n].get(name, 0.0)) / elapsed
                  for name, used in c.cpu_seconds().items()} for c in clusters}


def _visibility(tallies: list[Tally], s: BenchSettings, rounds: int) -> dict[int, dict]:
    """Visibility samples in blocks, the clusters' order alternating like the throughput's."""
    times: dict[int, list[float]] = {t.cluster.n: [] for t in tallies}
    failed = dict.fromkeys(times, 0)
    per_block = max(1, s.visibility_samples // rounds)
    for r in range(rounds):
        for tally in tallies if r % 2 == 0 else tallies[::-1]:
            n = tally.cluster.n
            block = visibility_probe(tally.cluster.node_urls, f"n{n}-{r}", samples=per_block,
                                     keep_times=True)
            times[n] += block["times_ms"]
            failed[n] += block["failed"]
    return {n: {"samples": len(t), "failed": failed[n], "p50_ms": percentile(t, 50),
                "p99_ms": percentile(t, 99), "max_ms": max(t) if t else float("nan")}
            for n, t in times.items()}


def run(workdir: Path, s: BenchSettings, log, sizes: tuple[int, ...] = SIZES) -> dict:
    """Every cluster up at once (idle ones cost little), rounds alternating the order of N, so
    a change of the machine's load hits every N alike; ratios are medians of per-round ratios."""
    rounds = 2 if s.quick else 4
    log(f"N scaling: clusters of {', '.join(map(str, sizes))} nodes, {WORKERS} Gunicorn worker "
        f"per node, all up at once, {rounds} rounds alternating the order")
    clusters = [Cluster(workdir / f"n{n}", n) for n in sizes]
    try:
        t0 = time.monotonic()
        for cluster in clusters:
            cluster.start()
        log(f"  {sum(sizes)} nodes + {sum(sizes)} redis-servers healthy in "
            f"{time.monotonic() - t0:.1f} s")
        idle = idle_cpu(clusters, 1.0 if s.quick else 3.0)
        tallies = [Tally(cluster, idle[cluster.n]) for cluster in clusters]
        per_round: list[dict[int, float]] = []
        for r in range(rounds):
            got = {}
            for tally in tallies if r % 2 == 0 else tallies[::-1]:
                got[tally.cluster.n] = tally.measure_round(s)
            per_round.append(got)
            log(f"  round {r + 1}: PUT/s at node1 " + ", ".join(
                f"N={n}: {got[n]:.0f}" for n in sizes))
        visibility = _visibility(tallies, s, rounds)
        rows = []
        for tally in tallies:
            cluster = tally.cluster
            row = tally.summary()
            row["idle_cluster_cpu_s_per_s"] = sum(tally.idle.values())
            for url in cluster.node_urls[1:]:
                run_count(put_target(url, "peer"), PEER_WRITES, s.concurrency, s.processes)
            cluster.wait_replicated()
            row["wire"] = wire_bytes(cluster, BYTES_WRITES, s)
            cluster.wait_replicated()
            row["visibility"] = visibility[cluster.n]
            row["throughput_ratio_to_first"] = median_ratio(
                [got[cluster.n] for got in per_round], [got[sizes[0]] for got in per_round])
            vis = row["visibility"]
            log(f"  N={cluster.n}: visible everywhere p50 {vis['p50_ms']:.1f} ms, p99 "
                f"{vis['p99_ms']:.1f} ms; {row['messages_per_write']:.2f} messages, "
                f"{row['wire']['bytes_per_write']:.0f} bytes per write; clock "
                f"{row['wire']['clock_bytes']} bytes")
            rows.append(row)
    finally:
        for cluster in clusters:
            cluster.stop()
    return {"workers_per_node": WORKERS, "sizes": list(sizes), "rounds": rounds, "rows": rows,
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
    exact = all(abs(r["messages_per_write"] - (r["n"] - 1)) < 0.01 for r in rows)
    messages_verdict = "met" if exact else "MISSED"
    return [
        (f"N={ns}: PUT/s at node1 (median of rounds)",
         join([_median(r["throughput_per_s"]) for r in rows], 0), ""),
        (f"N={ns}: PUT throughput ratio to N={rows[0]['n']}",
         join([r["throughput_ratio_to_first"] for r in rows], 2), ""),
        (f"N={ns}: visible on every node p50 ms", join([r["visibility"]["p50_ms"] for r in rows]),
         ""),
        (f"N={ns}: visible on every node p99 ms", join([r["visibility"]["p99_ms"] for r in rows]),
         ""),
        (f"N={ns}: replication messages per write", join([r["messages_per_write"] for r in rows],
                                                         2), f"= N - 1 ({messages_verdict})"),
        (f"N={ns}: /replicate batches per write (loaded)",
         join([r["batches_per_write"] for r in rows], 3), ""),
        (f"N={ns}: replication bytes per write", join([r["wire"]["bytes_per_write"] for r in rows],
                                                      0), "O(N) x (const + O(N))"),
        (f"N={ns}: vector clock bytes in a message",
         join([r["wire"]["clock_bytes"] for r in rows], 0), "O(N)"),
        (f"N={ns}: CPU s / 1000 writes, writer node", join([c["writer_node"] for c in cpu], 2), ""),
        (f"N={ns}: CPU s / 1000 writes, writer's Redis", join([c["writer_redis"] for c in cpu],
                                                               2), ""),
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
              label="(N - 1) / (N0 - 1): one message per peer")
    left.plot(ns, [n / first["n"] for n in ns], linestyle=":", color="black",
              label="N / N0: one clock entry per node")
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
