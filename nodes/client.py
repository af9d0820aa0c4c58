"""Command-line client for the causal KV store.

    python -m nodes.client --node http://127.0.0.1:5001 put x '"A"'
    python -m nodes.client --node http://127.0.0.1:5002 get x
    python -m nodes.client list [--prefix p]     (every key and its winner, paged)
    python -m nodes.client status | watch | demo | sync

The session's causal context (the largest clock it has observed) is kept in a file, so
consecutive commands against different nodes keep read-your-writes, monotonic reads and
writes-follow-reads: every request carries it and the node waits until it has caught up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common.settings import env_list, load_dotenv
from nodes import vclock
from stack.services import default_settings

DEFAULT_NODES = default_settings()["NODE_URLS"]
DEFAULT_SESSION = Path(os.environ.get("GRIDCLOCK_SESSION",
                                      Path.home() / ".gridclock-session.json"))


class KVError(RuntimeError):
    """A node answered with an error (or not at all); the message says which and why."""


@dataclass
class Session:
    """The causal context of one client session, optionally persisted to a file."""

    path: Path | None = None
    context: list[int] | None = None

    @classmethod
    def load(cls, path: Path | None) -> Session:
        if path is not None and path.exists():
            try:
                return cls(path, json.loads(path.read_text()).get("context"))
            except (ValueError, AttributeError):
                pass  # an unreadable session file starts a fresh session
        return cls(path)

    def observe(self, clock: list[int]) -> None:
        self.context = clock if self.context is None or len(self.context) != len(clock) \
            else vclock.merge(self.context, clock)
        if self.path is not None:
            self.path.write_text(json.dumps({"context": self.context}))


class KVClient:
    def __init__(self, node: str, session: Session | None = None, timeout: float = 5.0):
        self.node = node.rstrip("/")
        self.session = session or Session()
        self.http = requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, self.node + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise KVError(f"{self.node} unreachable: {type(exc).__name__}") from exc

    def _result(self, resp: requests.Response, allow_404: bool = False) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError as exc:
            raise KVError(f"{self.node}: HTTP {resp.status_code}, not JSON") from exc
        if resp.status_code == 200 or (allow_404 and resp.status_code == 404):
            if "vector_clock" in body:
                self.session.observe(body["vector_clock"])
            return body
        raise KVError(f"{self.node}: HTTP {resp.status_code}: {body.get('error', body)}")

    def put(self, key: str, value: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"value": value}
        if self.session.context is not None:
            body["context"] = self.session.context
        return self._result(self._call("PUT", f"/kv/{key}", json=body))

    def get(self, key: str) -> dict[str, Any]:
        params = {}
        if self.session.context is not None:
            params["context"] = ",".join(map(str, self.session.context))
        return self._result(self._call("GET", f"/kv/{key}", params=params), allow_404=True)

    def status(self) -> dict[str, Any]:
        return self._result(self._call("GET", "/status"))

    def list_page(self, prefix: str = "", cursor: str | None = None,
                  limit: int = 1000) -> dict[str, Any]:
        """One page of `GET /kv`: {"items": [{"key", "value", "version", "siblings"}], "cursor"}."""
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._result(self._call("GET", "/kv", params=params))

    def items(self, prefix: str = "", limit: int = 1000) -> Iterator[dict[str, Any]]:
        """Every key under `prefix`, exactly once, one page at a time."""
        cursor = None
        while True:
            page = self.list_page(prefix, cursor, limit)
            yield from page["items"]
            cursor = page["cursor"]
            if cursor is None:
                return

    def sync(self, admin_token: str) -> dict[str, Any]:
        resp = self._call("POST", "/admin/sync", headers={"X-Admin-Token": admin_token})
        return self._result(resp)

    def events(self, since: int = 0, limit: int = 100) -> dict[str, Any]:
        return self._result(self._call("GET", "/events",
                                       params={"since": since, "limit": limit}))

    def set_link(self, admin_token: str, peer: int, **settings: Any) -> dict[str, Any]:
        resp = self._call("POST", "/admin/links", json={"peer": peer, **settings},
                          headers={"X-Admin-Token": admin_token})
        return self._result(resp)


# -- the seed scenario -------------------------------------------------------------------------
@dataclass
class DemoStep:
    title: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def _poll(fn, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def demo_steps(node_urls: list[str], admin_token: str, delay_ms: int = 3000,
               tag: str | None = None) -> Iterator[DemoStep]:
    """The seed scenario, step by step: x written at node1, read at node2, a dependent y
    written at node2; node1's link to node3 is slow, so node3 holds y in its buffer until x
    arrives, then delivers x before y. Yields narrated steps; raises KVError on failure."""
    if len(node_urls) < 3:
        raise KVError("the demo needs at least three nodes")
    session = Session()
    n1, n2, n3 = (KVClient(url, session) for url in node_urls[:3])
    tag = tag or time.strftime("%H%M%S")
    x_value, y_value = f"A@{tag}", f"B (after {tag})"
    n1.set_link(admin_token, 2, delay_ms=delay_ms, paused=False)
    try:
        yield DemoStep("Slow link", f"node1 → node3 now delays every message by {delay_ms} ms.",
                       {"delay_ms": delay_ms})
        put_x = n1.put("x", x_value)
        yield DemoStep("Write x at node1",
                       f"x = {x_value!r}, version {put_x['version']}; node1's clock is now "
                       f"{put_x['vector_clock']}.", {"response": put_x})
        got = n2.get("x")
        yield DemoStep("Read x at node2",
                       f"node2 answers x = {got.get('value')!r} (the session context "
                       f"{session.context} made it wait for the write if needed).",
                       {"response": got})
        put_y = n2.put("y", y_value)
        y_version = put_y["version"]
        yield DemoStep("Write y at node2",
                       f"y = {y_value!r}, version {y_version}: it causally follows x.",
                       {"response": put_y})

        def y_buffered():
            st = n3.status()
            hit = [m for m in st["buffer"] if m["key"] == "y" and m["vc"] == y_version]
            return (st, hit[0]) if hit else None

        buffered = _poll(y_buffered, timeout=delay_ms / 1000 / 2)
        if buffered:
            st, msg = buffered
            yield DemoStep("node3 buffers y",
                           f"node3's clock is {st['vector_clock']}; y carries {msg['vc']}, which "
                           f"needs node1's write #{y_version[0]} first, so y waits in the buffer "
                           f"({msg['waited_ms']} ms so far).",
                           {"status": st, "message": msg, "buffered": True})
        else:
            yield DemoStep("node3 buffers y", "y was not seen in node3's buffer (did the slow "
                           "link take effect?)", {"buffered": False})

        def delivered():
            st = n3.status()
            return st if vclock.leq(y_version, st["vector_clock"]) else None

        st = _poll(delivered, timeout=delay_ms / 1000 + 10)
        if not st:
            raise KVError("node3 did not deliver y in time")
        log = n3.events(since=0, limit=10_000)["events"]
        order = [e for e in log if (e["key"], e["version"]) in
                 (("x", put_x["version"]), ("y", y_version))]
        yield DemoStep("node3 delivers x, then y",
                       "node3's delivery log: " + ", ".join(
                           f"{e['key']} (waited {e['buffered_ms']} ms)" for e in order)
                       + f"; clock {st['vector_clock']}.",
                       {"status": st, "events": order})
    finally:
        n1.set_link(admin_token, 2, delay_ms=0, paused=False)


# -- command line ------------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare word is a string


def _watch(urls: list[str], interval: float, count: int | None) -> None:
    shown = 0
    while count is None or shown < count:
        lines = []
        for i, url in enumerate(urls):
            try:
                st = KVClient(url, timeout=2).status()
                lines.append(f"node{i + 1} {st['state']} clock={st['vector_clock']} "
                             f"keys={st['keys']} buffer={st['buffered']} outbox={st['outbox']}")
            except KVError as exc:
                lines.append(f"node{i + 1} DOWN ({exc})")
        print(time.strftime("%H:%M:%S"), " | ".join(lines), flush=True)
        shown += 1
        if count is None or shown < count:
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
    parser = argparse.ArgumentParser(prog="python -m nodes.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", default=None, help="node base URL (default: first of --nodes)")
    parser.add_argument("--nodes", default=",".join(env_list("NODE_URLS", DEFAULT_NODES)),
                        help="all node URLs, ordered by NODE_ID (watch, demo)")
    parser.add_argument("--session", type=Path, default=DEFAULT_SESSION,
                        help="file holding the session's causal context")
    parser.add_argument("--no-session", action="store_true", help="do not carry a context")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_put = sub.add_parser("put", help="write a value (JSON, or a bare string)")
    p_put.add_argument("key")
    p_put.add_argument("value")
    sub.add_parser("get", help="read a key").add_argument("key")
    sub.add_parser("status", help="a node's state, clock, key count, buffer and outboxes")
    p_list = sub.add_parser("list", help="every key and its value, one line each (paged)")
    p_list.add_argument("--prefix", default="")
    sub.add_parser("sync", help="run an anti-entropy round now (needs ADMIN_TOKEN)")
    p_watch = sub.add_parser("watch", help="clocks and buffers of every node, every second")
    p_watch.add_argument("--interval", type=float, default=1.0)
    p_watch.add_argument("--count", type=int, default=None)
    p_demo = sub.add_parser("demo", help="play the seed scenario")
    p_demo.add_argument("--delay-ms", type=int, default=3000)
    sub.add_parser("reset", help="forget the session's context")
    args = parser.parse_args(argv)

    urls = [u.strip() for u in args.nodes.split(",") if u.strip()]
    node = args.node or urls[0]
    session = Session() if args.no_session else Session.load(args.session)
    client = KVClient(node, session)
    try:
        if args.cmd == "put":
            print(json.dumps(client.put(args.key, _parse_value(args.value)), indent=2))
        elif args.cmd == "get":
            print(json.dumps(client.get(args.key), indent=2))
        elif args.cmd == "status":
            print(json.dumps(client.status(), indent=2))
        elif args.cmd == "list":
            for item in client.items(args.prefix):
                print(json.dumps(item["key"], ensure_ascii=False), json.dumps(item["value"]),
                      item["version"], flush=True)
        elif args.cmd == "sync":
            print(json.dumps(client.sync(os.environ.get("ADMIN_TOKEN", "")), indent=2))
        elif args.cmd == "watch":
            _watch(urls, args.interval, args.count)
        elif args.cmd == "reset":
            if args.session.exists():
                args.session.unlink()
            print("session context cleared")
        elif args.cmd == "demo":
            token = os.environ.get("ADMIN_TOKEN", "")
            for i, step in enumerate(demo_steps(urls, token, args.delay_ms), 1):
                print(f"{i}. {step.title}: {step.detail}", flush=True)
    except KVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
