"""The report directory: history, final state, verdict and a timeline plot."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from chaos.checker.history import pair

FAULT_COLORS = {"partition": "#f4a582", "isolate": "#f4a582", "grid": "#d6604d",
                "pause": "#92c5de", "kill": "#b2182b", "slow": "#fddbc7", "lossy": "#fddbc7",
                "disk": "#762a83"}


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def plot(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Faults as shaded bands over ops/s (ok by kind), latency of ok ops, fail/info per s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops, faults = pair(history)
    end = max((e["time"] for e in history), default=1.0)
    fig, axes = plt.subplots(3, 1, figsize=(13, 8), sharex=True)
    per_s: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    bad: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    lat: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for op in ops:
        if op.complete is None:
            continue
        second = int(op.end)
        if op.type == "ok":
            per_s[op.f][second] += 1
            xs, ys = lat[op.f]
            xs.append(op.end)
            ys.append((op.end - op.start) * 1000)
        else:
            bad[f"{op.f} {op.type}"][second] += 1
    seconds = list(range(int(end) + 1))
    for f, counts in sorted(per_s.items()):
        axes[0].plot(seconds, [counts.get(s, 0) for s in seconds], label=f"{f} ok", lw=1.2)
    for f, (xs, ys) in sorted(lat.items()):
        axes[1].scatter(xs, ys, s=3, label=f, alpha=0.5)
    for f, counts in sorted(bad.items()):
        axes[2].plot(seconds, [counts.get(s, 0) for s in seconds], label=f, lw=1.2)
    axes[0].set_ylabel("ok ops/s")
    axes[1].set_ylabel("latency ms (ok)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("fail / info per s")
    axes[2].set_xlabel("seconds since start")
    for ax in axes:
        for fault in faults:
            color = next((c for k, c in FAULT_COLORS.items() if fault.kind.startswith(k)),
                         "#cccccc")
            ax.axvspan(fault.start, min(fault.end, end), color=color, alpha=0.35, lw=0)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7, ncol=4)
    for fault in faults:
        target = fault.value.get("target") or fault.value.get("node") or \
            fault.value.get("substation") or fault.value.get("from") or ""
        axes[0].text(fault.start, axes[0].get_ylim()[1] * 0.98, f"{fault.kind}\n{target}",
                     fontsize=6, va="top", rotation=90)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
