"""One PNG of a bench run: throughput, latency percentiles, KV visibility, balance per strategy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

SIDES = (("baseline", "minimal\nFlask+Redis", "kv"), ("node", "KV node1\n(replicating)", "kv"),
         ("direct", "substation\ndirect", "grid"), ("balancer", "via\nbalancer", "grid"))
COLORS = ("#9e9e9e", "#1f77b4", "#bdbdbd", "#ff7f0e")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _throughput(ax, results: dict) -> None:
    labels, values = [], []
    for key, label, area in SIDES:
        labels.append(label)
        values.append(_median(results[area]["throughput"][key]["throughput_per_s"]))
    bars = ax.bar(labels, values, color=COLORS)
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("requests / s (median of rounds)")
    kv_ratio = results["kv"]["throughput"]["ratio"]
    grid_ratio = results["grid"]["throughput"]["ratio"]
    ax.set_title(f"Throughput: KV/minimal = {kv_ratio:.2f}, balancer/direct = {grid_ratio:.2f}")


def _latency(ax, results: dict) -> None:
    width = 0.25
    quantiles = (("p50_ms", "#2ca02c"), ("p90_ms", "#ff7f0e"), ("p99_ms", "#d62728"))
    for i, (quantile, color) in enumerate(quantiles):
        values = [results[area]["throughput"][key][quantile] for key, _, area in SIDES]
        xs = [x + (i - 1) * width for x in range(len(SIDES))]
        ax.bar(xs, values, width, label=quantile.replace("_ms", ""), color=color)
    ax.set_xticks(range(len(SIDES)), [label for _, label, _ in SIDES])
    ax.set_ylabel("ms, closed loop at full load")
    ax.set_title("Latency percentiles of the throughput runs")
    ax.legend()


def _visibility(ax, results: dict) -> None:
    vis = results["kv"]["visibility"]
    groups = (("light load", vis["light"]), ("50 % of max", vis["half_load"]))
    width = 0.35
    for i, (quantile, color) in enumerate((("p50_ms", "#2ca02c"), ("p99_ms", "#d62728"))):
        values = [group[quantile] for _, group in groups]
        bars = ax.bar([x + (i - 0.5) * width for x in range(len(groups))], values, width,
                      label=quantile.replace("_ms", ""), color=color)
        ax.bar_label(bars, fmt="%.1f")
    ax.axhline(50, linestyle="--", color="black", linewidth=0.8, label="target p99 (light)")
    ax.set_xticks(range(len(groups)), [name for name, _ in groups])
    ax.set_ylabel("ms until visible on every node")
    drain = results["kv"]["drain"]
    ax.set_title(f"KV visibility; drain {drain['rate_per_s']:.0f} msg/s "
                 f"({drain['queued']} queued)")
    ax.legend()


def _balance(ax, results: dict) -> None:
    strategies = results["grid"]["strategies"]
    names = list(strategies)
    substations = list(strategies[names[0]]["utilization_after_wave1"])
    width = 0.8 / max(1, len(substations))
    for j, sub in enumerate(substations):
        values = [strategies[name]["utilization_after_wave1"].get(sub, 0) for name in names]
        ax.bar([x + (j - (len(substations) - 1) / 2) * width for x in range(len(names))],
               values, width, label=sub)
    labels = [f"{name}\nspread {strategies[name]['spread_after_wave1']:.2f}\n"
              f"refused w/ room {strategies[name]['refused_while_capacity_remained']}\n"
              f"upstream retries {strategies[name]['upstream_retries']:.0f}"
              for name in names]
    ax.set_xticks(range(len(names)), labels, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("utilisation after 60 % of capacity asked")
    ax.set_title("Balance quality per strategy (same burst)")
    ax.legend(fontsize=8)


def render(results: dict, path: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    _throughput(axes[0][0], results)
    _latency(axes[0][1], results)
    _visibility(axes[1][0], results)
    _balance(axes[1][1], results)
    machine = results["machine"]
    fig.suptitle(f"GridClock bench {results['started_at']} on {machine['cpus']} CPUs "
                 f"({machine['platform']}); load generator on the same cores")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
