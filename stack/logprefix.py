"""Supervisor event listener that prints every program's output as `name | line`.

Supervisord sends PROCESS_LOG events (programs have stdout_events_enabled); this listener writes
the lines, prefixed like `docker compose up`, to its stderr, which supervisord copies to its own
stdout: the terminal of `make up`. Protocol: http://supervisord.org/events.html
"""

from __future__ import annotations

import argparse
import io
import sys

COLORS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)


def parse_header(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


class Prefixer:
    """Splits chunks into lines per program (a chunk may end mid-line) and prefixes them."""

    def __init__(self, width: int, color: bool):
        self.width, self.color = width, color
        self.partial: dict[str, str] = {}
        self.colors: dict[str, int] = {}

    def prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        if not self.color:
            return label
        code = self.colors.setdefault(name, COLORS[len(self.colors) % len(COLORS)])
        return f"\x1b[{code}m{label}\x1b[0m"

    def feed(self, name: str, data: str) -> list[str]:
        text = self.partial.pop(name, "") + data
        *lines, rest = text.split("\n")
        if rest:
            self.partial[name] = rest
        return [f"{self.prefix(name)} {line.rstrip()}" for line in lines]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=12)
    parser.add_argument("--color", action="store_true")
    args = parser.parse_args(argv)
    prefixer = Prefixer(args.width, args.color)
    # `len` counts characters of the UTF-8 payload, so read text, not bytes.
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    stdout = sys.stdout
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return  # supervisord went away
        header = parse_header(line)
        payload = stdin.read(int(header["len"]))
        event_header, _, data = payload.partition("\n")
        name = parse_header(event_header).get("processname", "?")
        lines = prefixer.feed(name, data)
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    main()
