"""`python -m loadtest ui` (web UI on :8089) and `python -m loadtest rush-hour --run-time 60s`.

Both run against an already running stack (`make up`); URLs come from BALANCER_URL / NODE_URLS or
the flags below. rush-hour runs headless, writes CSV + HTML reports, prints refusals vs failures
and exits non-zero when anything other than a grid refusal failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import requests

from loadtest import config
from loadtest.reports import report_paths, summarize

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
REPORTS_DIR = HERE / "reports"


def locust_env(balancer: str, nodes: list[str], run_time: str | None = None) -> dict[str, str]:
    env = {**os.environ, "BALANCER_URL": balancer, "NODE_URLS": ",".join(nodes)}
    if run_time:
        env["RUN_TIME"] = run_time
    return env


def warn_if_down(balancer: str) -> None:
    try:
        requests.get(balancer + "/health", timeout=2)
    except requests.RequestException:
        print(f"warning: no balancer at {balancer}; start the stack with `make up` first",
              file=sys.stderr)


def ui_command(balancer: str, web_host: str, web_port: int) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--class-picker",
            "--web-host", web_host, "--web-port", str(web_port), "--host", balancer]


def rush_hour_command(balancer: str, run_time: str, prefix: Path, peak_users: int | None,
                      ) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
            "--host", balancer, "--run-time", run_time, "--csv", str(prefix), "--csv-full-history",
            "--html", str(prefix.with_name(prefix.name + ".html"))]
    if peak_users:
        argv += ["--users", str(peak_users)]
    return argv


def check_reports(prefix: Path, locust_code: int = 0) -> int:
    """Print the run's summary; 0 when the reports exist and hold only refusals, else 1."""
    missing = [p for p in [*report_paths(prefix), prefix.with_name(prefix.name + ".html")]
               if not p.exists()]
    if missing:
        print("missing reports: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 1
    summary = summarize(prefix)
    print("\n".join(summary.lines()))
    if summary.total_requests == 0:
        print("no requests were made: is the stack up?", file=sys.stderr)
        return 1
    if locust_code != 0 and summary.ok:
        print(f"locust exited with {locust_code}", file=sys.stderr)
    return 0 if summary.ok and locust_code == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--balancer-url", default=config.balancer_url())
    parser.add_argument("--node-urls", default=",".join(config.node_urls()),
                        help="comma list of node URLs ordered by NODE_ID")
    sub = parser.add_subparsers(dest="command", required=True)
    ui = sub.add_parser("ui", help="Locust web UI against the running stack")
    ui.add_argument("--web-port", type=int, default=8089)
    ui.add_argument("--web-host", default="127.0.0.1", help="interface to bind (0.0.0.0: all)")
    rush = sub.add_parser("rush-hour", help="the rush-hour shape, headless, with reports")
    rush.add_argument("--run-time", default="60s", help="total length: 60s, 5m, 1h30m")
    rush.add_argument("--peak-users", type=int, default=None,
                      help="users at the peak (default: enough to exceed the grid capacity)")
    rush.add_argument("--reports", type=Path, default=REPORTS_DIR / "rush-hour",
                      help="report path prefix (default loadtest/reports/rush-hour)")
    args = parser.parse_args(argv)

    balancer = args.balancer_url.rstrip("/")
    nodes = [url.strip().rstrip("/") for url in args.node_urls.split(",") if url.strip()]
    warn_if_down(balancer)
    if args.command == "ui":
        print(f"Locust web UI: http://{args.web_host}:{args.web_port}  "
              "(shape class: RushHourShape, or Default for a plain user count)")
        try:
            return subprocess.run(ui_command(balancer, args.web_host, args.web_port),
                                  env=locust_env(balancer, nodes)).returncode
        except KeyboardInterrupt:
            return 0

    try:
        config.parse_timespan(args.run_time)
    except ValueError as exc:
        parser.error(str(exc))
    prefix = args.reports.resolve()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*report_paths(prefix), prefix.with_name(prefix.name + ".html"),
                  prefix.with_name(prefix.name + "_exceptions.csv")]:
        stale.unlink(missing_ok=True)  # never judge this run by the last one's files
    code = subprocess.run(rush_hour_command(balancer, args.run_time, prefix, args.peak_users),
                          env=locust_env(balancer, nodes, args.run_time)).returncode
    verdict = check_reports(prefix, code)
    print(f"reports: {prefix}_stats.csv, _failures.csv, _stats_history.csv, {prefix.name}.html")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
