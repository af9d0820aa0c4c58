"""python -m chaos run --duration 120 --seed 7 | soak --seeds 10 --duration 120"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from stack import netns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "soak"):
        p = sub.add_parser(name)
        p.add_argument("--duration", type=float, default=120.0)
        group = p.add_mutually_exclusive_group()
        group.add_argument("--no-disk-loss", action="store_true",
                           help="leave the disk-loss fault out of the schedule")
        group.add_argument("--force-disk-loss", action="store_true",
                           help="inject disk loss even when the nodes cannot recover from it")
        group.add_argument("--require-disk-loss", action="store_true",
                           help="exit 3 at once when the nodes cannot recover from disk loss")
        p.add_argument("--faults", default="",
                       help="comma-separated fault kinds (default: all), e.g. kill=redis-grid")
        p.add_argument("--out", type=Path, default=None,
                       help="parent of the report directory (default chaos/reports)")
        if name == "run":
            p.add_argument("--seed", type=int, default=7)
        else:
            p.add_argument("--seeds", type=int, default=10)
            p.add_argument("--first-seed", type=int, default=100)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the hosts stack is stopped and the report still written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    why = netns.missing_requirements()
    if why:
        print(f"make chaos: {why}", file=sys.stderr)
        return 2
    from chaos.hoststack import StackBusy
    from chaos.nemesis import KINDS
    from chaos.run import DiskLossUnsupported, run, summary

    disk_loss = ("no" if args.no_disk_loss else "force" if args.force_disk_loss
                 else "require" if args.require_disk_loss else "auto")
    faults = tuple(k for k in args.faults.split(",") if k) or KINDS
    unknown = [k for k in faults if k.partition("=")[0] not in KINDS]
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; known: {', '.join(KINDS)}")

    seeds = [args.seed] if args.command == "run" else \
        list(range(args.first_seed, args.first_seed + args.seeds))
    rows = []
    for seed in seeds:
        try:
            report, verdict = run(args.duration, seed, args.out, disk_loss=disk_loss,
                                  faults=faults)
        except DiskLossUnsupported as exc:
            print(f"make chaos: {exc}", file=sys.stderr)
            return 3
        except StackBusy as exc:
            print(f"make chaos: {exc}", file=sys.stderr)
            return 2
        print(summary(report, verdict), flush=True)
        rows.append((seed, verdict, report))
    if args.command == "soak":
        print(table(rows))
    return 0 if all(v["valid"] for _, v, _ in rows) else 1


def table(rows) -> str:
    head = ("seed", "valid", "violations", "ops", "acked writes", "events", "admitted",
            "refused", "faults", "lost(disk)", "converged s")
    body = []
    for seed, v, _ in rows:
        c = v["counts"]
        body.append((str(seed), str(v["valid"]), str(len(v["violations"])), str(c["operations"]),
                     str(c["kv_writes_acked"]), str(c["delivery_events_checked"]),
                     str(c["charges_admitted"]), str(c["charges_refused"]),
                     str(sum(c["faults"].values())), str(c["writes_lost_to_disk_loss"]),
                     str(c.get("converged_after_s"))))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in body]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
