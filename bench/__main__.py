"""`make bench`: start a fresh local stack on free ports, measure, stop everything, report.

Prints a table and writes bench/results/latest.json, latest.md and bench.png. BENCH_QUICK=1
for a short run. Every ratio is measured A/B alternating within this one run on this machine, and
the median of the per-round ratios is quoted. The load generator runs on the same cores as the
services, which the figures include (and the output says).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGETS = {"kv_ratio_min": 0.85, "visibility_light_p99_ms_max": 50.0, "added_p50_ms_max": 2.0,
           "ae_bytes_max": 4096, "added_ratio_to_proxy_max": 1.5}
# BENCH_PARTS=grid (or kv, nscale) measures some parts only; the default is all three.
PARTS = tuple(p.strip() for p in os.environ.get("BENCH_PARTS", "kv,grid,nscale").split(",")
              if p.strip())


def log(message: str) -> None:
    print(message, flush=True)


def machine_info() -> dict:
    return {
        "platform": platform.platform(terse=True),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "load generator, services and their Redis servers share these CPUs",
    }


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _verdict(target: str, met: bool) -> str:
    return f"{target} ({'met' if met else 'MISSED'})"


def table(results: dict) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows."""
    rows = kv_rows(results["kv"]) if "kv" in results else []
    if "grid" in results:
        rows += grid_rows(results["grid"])
    if "nscale" in results:
        from bench.nscale import table_rows

        rows += table_rows(results["nscale"])
    return rows


def kv_rows(kv: dict) -> list[tuple[str, str, str]]:
    vis = kv["visibility"]
    return [
        ("KV PUT throughput ratio node1 / minimal app", _fmt(kv["throughput"]["ratio"]),
         _verdict(f">= {TARGETS['kv_ratio_min']}",
                  kv["throughput"]["ratio"] >= TARGETS["kv_ratio_min"])),
        ("  node1 PUT/s / minimal PUT/s (medians)", _fmt(_median(
            kv["throughput"]["node"]["throughput_per_s"]), 0) + " / " + _fmt(_median(
            kv["throughput"]["baseline"]["throughput_per_s"]), 0), ""),
        ("KV visible on every node, light load p50 / p99 ms",
         f"{_fmt(vis['light']['p50_ms'], 1)} / {_fmt(vis['light']['p99_ms'], 1)}",
         _verdict(f"p99 <= {TARGETS['visibility_light_p99_ms_max']:.0f}",
                  vis["light"]["p99_ms"] <= TARGETS["visibility_light_p99_ms_max"])),
        ("KV visible on every node, 50 % load p50 / p99 ms",
         f"{_fmt(vis['half_load']['p50_ms'], 1)} / {_fmt(vis['half_load']['p99_ms'], 1)}", ""),
        ("KV drain after paused link, msg/s", f"{_fmt(kv['drain']['rate_per_s'], 0)} "
         f"({kv['drain']['queued']} in {_fmt(kv['drain']['drain_s'])} s)", ""),
        (f"KV anti-entropy round, agreeing {kv['anti_entropy']['keys']}-key stores: "
         "bytes / ms (ratio to a full copy)",
         f"{_fmt(kv['anti_entropy']['round_bytes'], 0)} / {_fmt(kv['anti_entropy']['round_ms'], 1)}"
         f" ({_fmt(kv['anti_entropy']['bytes_ratio'], 5)} / "
         f"{_fmt(kv['anti_entropy']['time_ratio'], 3)})",
         _verdict(f"<= {TARGETS['ae_bytes_max']} bytes",
                  kv["anti_entropy"]["round_bytes"] <= TARGETS["ae_bytes_max"])),
    ]


def grid_rows(grid: dict) -> list[tuple[str, str, str]]:
    ratio = grid["latency"].get("added_ratio_to_proxy", float("nan"))
    rows = [
        ("Grid throughput ratio balancer / direct", _fmt(grid["throughput"]["ratio"]), ""),
        ("  balancer / direct POST /charge per s (medians)", _fmt(_median(
            grid["throughput"]["balancer"]["throughput_per_s"]), 0) + " / " + _fmt(_median(
            grid["throughput"]["direct"]["throughput_per_s"]), 0), ""),
        ("Balancer added latency p50 / p99 ms",
         f"{_fmt(grid['latency']['added_p50_ms'])} / {_fmt(grid['latency']['added_p99_ms'])}",
         _verdict(f"p50 < {TARGETS['added_p50_ms_max']:.0f}",
                  grid["latency"]["added_p50_ms"] < TARGETS["added_p50_ms_max"])),
        ("  bare Flask proxy added latency p50 ms (one hop, nothing else)",
         _fmt(grid["latency"].get("proxy_added_p50_ms", float("nan"))), ""),
        ("Balancer added latency / bare proxy hop (p50, median of rounds)", _fmt(ratio),
         _verdict(f"<= {TARGETS['added_ratio_to_proxy_max']}",
                  ratio <= TARGETS["added_ratio_to_proxy_max"])),
    ]
    for key, row in grid.get("rush_hour", {}).items():
        rows.append((f"Rush hour, {row['rule']}: admitted / turned away of {row['cars']}",
                     f"{row['admitted']} / {row['turned_away']}", "smart admits more" if
                     key == "smart" else ""))
        rows.append((f"  {key}: energy kWh / mean allocation kW / mean power kW",
                     f"{_fmt(row['energy_kwh'], 3)} / "
                     f"{_fmt(row['mean_allocated_kw_at_admission'])} / "
                     f"{_fmt(row['mean_power_kw'])}", ""))
    share = grid.get("session_share")
    for name, row in grid["strategies"].items():
        target = ""
        if name == "least-utilization" and share:
            target = _verdict(f"spread <= {share:.3f} (one session)",
                              row["spread_after_wave1"] <= share + 1e-9)
        rows.append((f"Strategy {name}: spread / refused (with room) / retries",
                     f"{_fmt(row['spread_after_wave1'])} / {row['refused']} "
                     f"({row['refused_while_capacity_remained']}) / "
                     f"{row['upstream_retries']:.0f}", target))
    return rows


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def markdown(results: dict) -> str:
    """The table as Markdown, with the machine it ran on (pasted into docs/performance.md)."""
    machine = results["machine"]
    lines = [f"Run {results['started_at']}, {results['duration_s']} s, "
             f"{'BENCH_QUICK' if results['settings']['quick'] else 'full'} settings; "
             f"{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}; "
             f"load average {machine['loadavg_at_start'][0]} at start, "
             f"{machine.get('loadavg_at_end', ['?'])[0]} at end ({machine['note']}).", "",
             "| figure | value | target |", "|---|---|---|"]
    lines += [f"| {figure.strip()} | {value} | {target} |" for figure, value, target in
              table(results)]
    return "\n".join(lines) + "\n"


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    log("")
    log(f"{'figure'.ljust(width)}  {'value'.ljust(vwidth)}  target")
    log("-" * (width + vwidth + 12))
    for figure, value, target in rows:
        log(f"{figure.ljust(width)}  {value.ljust(vwidth)}  {target}")


def run(workdir: Path) -> dict:
    from bench import grid, kv, nscale
    from bench.settings import BenchSettings
    from common.procs import GunicornService, RedisServer
    from stack.local import LocalStack

    settings = BenchSettings.from_env()
    started = time.time()
    results: dict = {"started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                     "machine": machine_info(), "settings": settings.__dict__,
                     "targets": TARGETS}
    log(f"bench ({'quick' if settings.quick else 'full'}) on {results['machine']['cpus']} CPUs; "
        "the load generator shares them with the services, so absolute figures are low-balled")
    stack = LocalStack(workdir / "stack")
    baseline_redis = RedisServer(workdir / "baseline-redis", name="baseline-redis")
    baseline = GunicornService("minimal", "bench.minimal_app:create_app()",
                               {"REDIS_URL": baseline_redis.url}, log_dir=workdir, workers=2)
    proxy = GunicornService("proxy", "bench.proxy_app:create_app()", {}, log_dir=workdir,
                            workers=2)
    try:
        log("starting a fresh local stack and the minimal app on free ports ...")
        stack.start()
        baseline_redis.start()
        baseline.start()
        urls, nodes = stack.urls, stack.node_urls
        poll_s = float(stack.env_for("balancer").get("POLL_INTERVAL_S", "3"))
        if "kv" in PARTS:
            kv_tput = kv.throughput(nodes[0], baseline.url, settings, log)
            max_node = _median(kv_tput["node"]["throughput_per_s"])
            results["kv"] = {
                "throughput": kv_tput,
                "visibility": kv.visibility(nodes, max_node, settings, log),
                "drain": kv.drain(nodes, stack.admin_token, settings, log),
                "anti_entropy": kv.anti_entropy(nodes, stack.redis_urls["redis-node1"],
                                                stack.cluster_token, stack.admin_token,
                                                settings, log),
            }
        baseline.stop()
        baseline_redis.stop()
        if "grid" in PARTS:
            proxy.env["UPSTREAM"] = urls["substation1"]
            proxy.start()
            subs = [urls[name] for name in sorted(urls) if name.startswith("substation")]
            results["grid"] = {
                "throughput": grid.throughput(urls["balancer"], urls["substation1"], settings,
                                              log),
                "latency": grid.added_latency(urls["balancer"], urls["substation1"], proxy.url,
                                              settings, log),
                "strategies": grid.strategies(urls["balancer"], stack.admin_token, poll_s,
                                              settings, log),
                "session_share": grid.session_share(urls["balancer"]),
                "rush_hour": grid.rush_hour(urls["balancer"], subs, settings, log),
            }
    finally:
        proxy.stop()
        baseline.stop()
        baseline_redis.stop()
        stack.stop()
    if "nscale" in PARTS:
        results["nscale"] = nscale.run(workdir / "nscale", settings, log)
    results["duration_s"] = round(time.time() - started, 1)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def keep_logs(workdir: Path, dest: Path) -> None:
    """Copy every service log of a failed run out of the temporary directory."""
    shutil.rmtree(dest, ignore_errors=True)
    for log_file in workdir.rglob("*.log"):
        target = dest / log_file.relative_to(workdir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log_file, target)
    print(f"bench failed; service logs kept in {dest}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (same as BENCH_QUICK=1)")
    parser.add_argument("--only", choices=["nscale"],
                        help="run one part alone (nscale: clusters of N = 3, 5, 7 nodes)")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    if args.only == "nscale":
        return main_nscale()
    from bench.nscale import plot as plot_nscale
    from bench.plot import render

    with tempfile.TemporaryDirectory(prefix="gridclock-bench-") as tmp:
        try:
            results = run(Path(tmp))
        except BaseException:
            keep_logs(Path(tmp), RESULTS_DIR / "failed-run-logs")
            raise
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    # The plot needs both parts; a one-part run (BENCH_PARTS) writes the table only.
    plot = render(results, RESULTS_DIR / "bench.png") if {"kv", "grid"} <= set(PARTS) \
        else "no plot (BENCH_PARTS)"
    if "nscale" in results:
        plot_nscale(results["nscale"], RESULTS_DIR / "nscale.png")
    (RESULTS_DIR / "latest.md").write_text(markdown(results))
    print_table(table(results))
    log(f"\n{results['duration_s']} s; wrote {RESULTS_DIR / 'latest.json'} and {plot}")
    return 0


def main_nscale() -> int:
    """`python -m bench --only nscale`: the N-scaling part alone (nscale.json, nscale.png)."""
    from bench import nscale
    from bench.settings import BenchSettings

    started, machine = time.time(), machine_info()
    with tempfile.TemporaryDirectory(prefix="gridclock-nscale-") as tmp:
        try:
            result = nscale.run(Path(tmp), BenchSettings.from_env(), log)
        except BaseException:
            keep_logs(Path(tmp), RESULTS_DIR / "failed-run-logs")
            raise
    result["machine"] = {**machine, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    result["duration_s"] = round(time.time() - started, 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "nscale.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot = nscale.plot(result, RESULTS_DIR / "nscale.png")
    print_table(nscale.table_rows(result))
    log(f"\n{result['duration_s']} s; wrote {RESULTS_DIR / 'nscale.json'} and {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
