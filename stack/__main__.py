"""python -m stack up | up-hosts | down-hosts | ps [--json] | stop SVC | start SVC | kill SVC |
generate [--check]"""

from __future__ import annotations

import argparse
import json
import sys

from stack.config import run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description="GridClock's stack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run every service in the foreground (make up)")
    hosts = sub.add_parser("up-hosts", help="the same, every service on its own network "
                           "namespace (root, Linux)")
    hosts.add_argument("--without", default="", help="comma-separated services to leave out")
    sub.add_parser("down-hosts", help="remove namespaces, links and rules left by up-hosts")
    ps = sub.add_parser("ps", help="state, pid, port and health of every service")
    ps.add_argument("--json", action="store_true")
    for name, text in (("stop", "stop one service (it stays stopped)"),
                       ("start", "start a stopped service"),
                       ("kill", "SIGKILL one service, as a crash (it is restarted)")):
        sub.add_parser(name, help=text).add_argument("service", nargs="?")
    gen = sub.add_parser("generate", help="write compose.yaml and prometheus/prometheus.yml")
    gen.add_argument("--check", action="store_true", help="only report whether they are current")
    args = parser.parse_args(argv)

    if args.command == "up":
        from stack.up import main as up

        return up()
    if args.command in ("up-hosts", "down-hosts"):
        from stack import hosts

        if args.command == "down-hosts":
            return hosts.down_hosts()
        return hosts.up_hosts(tuple(name for name in args.without.split(",") if name))
    if args.command == "generate":
        return generate(args.check)

    from stack import control

    try:
        if args.command == "ps":
            rows = control.status(run_dir())
            print(json.dumps(rows, indent=1) if args.json else control.format_status(rows))
        else:
            print(getattr(control, args.command)(run_dir(), args.service))
    except control.ControlError as exc:
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def generate(check: bool) -> int:
    from stack.compose import generated_files

    stale = []
    for path, text in generated_files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text)
    if check and stale:
        print(f"out of date: {', '.join(stale)}; run python -m stack generate", file=sys.stderr)
        return 1
    print("written: " + ", ".join(stale) if stale and not check else "up to date")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `make ps | head`
        sys.exit(0)
