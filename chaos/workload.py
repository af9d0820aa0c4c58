"""The clients: causal KV sessions and EV drivers, each a thread recording what it does.

A KV session keeps a causal context (the merge of every clock it has been answered with),
sends it with every request, and talks to a random node each time: its guarantees must hold
across nodes. Some keys are hot (many sessions write them: concurrent siblings), every value
written is unique (`<session>-<n>`), so the checker can tell writes apart. A driver asks the
balancer for charging sessions of a few seconds and ends some of them early.

Outcomes: `ok`; `fail` when the request surely had no effect (connection refused, a 4xx, a 503
that says so); `info` when it may have (a timeout, a 5xx mid-request).
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import datetime
from typing import Any

import requests

from chaos.history import Recorder

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 3.5  # above the nodes' 2 s causal-context wait
MONITOR_TIMEOUT_S = 1.0  # the balancer's own upstream timeout
MONITOR_INTERVAL_S = 0.4
HOT_KEYS = ("hot0", "hot1")
COLD_KEYS = tuple(f"k{i}" for i in range(12))


def _merge(a: list[int] | None, b: list[int]) -> list[int]:
    return list(b) if a is None else [max(x, y) for x, y in zip(a, b, strict=True)]


def _outcome(exc: Exception) -> tuple[str, dict[str, Any]]:
    """A request that never reached the server had no effect (fail); any other error, e.g. a
    timeout or a connection cut mid-request, leaves it unknown (info)."""
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout) or (
            isinstance(exc, requests.ConnectionError)
            and ("Failed to establish a new connection" in text or "refused" in text)):
        return "fail", {"error": "connect", "detail": text[:200]}
    return "info", {"error": type(exc).__name__, "detail": text[:200]}


class Clients:
    def __init__(self, recorder: Recorder, node_urls: list[str], balancer_url: str,
                 seed: int, kv_clients: int = 4, ev_clients: int = 3,
                 substation_urls: dict[str, str] | None = None):
        self.recorder = recorder
        self.node_urls = node_urls
        self.balancer_url = balancer_url
        self.substation_urls = substation_urls or {}
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._kv, args=(i, seed), daemon=True)
                        for i in range(kv_clients)]
        self.threads += [threading.Thread(target=self._ev, args=(i, seed), daemon=True)
                         for i in range(ev_clients)]
        if self.substation_urls:
            self.threads.append(threading.Thread(target=self._monitor, daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(READ_TIMEOUT_S * 3)

    # -- KV sessions -----------------------------------------------------------------------
    def _kv(self, i: int, seed: int) -> None:
        rng = random.Random(f"{seed}-kv-{i}")
        process = f"kv{i}"
        http = requests.Session()
        context: list[int] | None = None
        n = 0
        while not self.stop_event.is_set():
            node = rng.randrange(len(self.node_urls))
            key = rng.choice(HOT_KEYS) if rng.random() < 0.4 else rng.choice(COLD_KEYS)
            if rng.random() < 0.5:
                n += 1
                value = f"{process}-{n}"
                args = {"node": node, "key": key, "value": value, "context": context}
                context = self._put(http, process, args, context)
            else:
                args = {"node": node, "key": key, "context": context}
                context = self._get(http, process, args, context)
            self.stop_event.wait(rng.uniform(0.0, 0.05))

    def _call(self, process, op: str, args: dict[str, Any], method, url: str, read_only=False,
              **kwargs) -> requests.Response | None:
        """Record the invocation, send it; a request that raised is recorded as its outcome
        (a read that may have happened is still a failure: it changed nothing) and gives None."""
        self.recorder.record(process, "invoke", op, args)
        try:
            return method(url, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kwargs)
        except requests.RequestException as exc:
            type_, value = _outcome(exc)
            self.recorder.record(process, "fail" if read_only else type_, op, value)
            return None

    def _put(self, http, process, args, context):
        body: dict[str, Any] = {"value": args["value"]}
        if context is not None:
            body["context"] = context
        resp = self._call(process, "put", args, http.put,
                          f"{self.node_urls[args['node']]}/kv/{args['key']}", json=body)
        if resp is None:
            return context
        data = _json(resp)
        if resp.status_code == 200:
            self.recorder.record(process, "ok", "put", {
                "node": data["node"], "version": data["version"],
                "vector_clock": data["vector_clock"], "siblings": data["siblings"]})
            return _merge(context, data["vector_clock"])
        # 4xx and 503 (context not reached, recovering, Redis down) are refusals; anything
        # else may have happened after the write.
        type_ = "fail" if resp.status_code < 500 or resp.status_code == 503 else "info"
        self.recorder.record(process, type_, "put", {"status": resp.status_code, **data})
        return context

    def _get(self, http, process, args, context):
        params = {"context": ",".join(map(str, context))} if context is not None else None
        resp = self._call(process, "get", args, http.get,
                          f"{self.node_urls[args['node']]}/kv/{args['key']}", read_only=True,
                          params=params)
        if resp is None:
            return context
        data = _json(resp)
        if resp.status_code in (200, 404) and "vector_clock" in data:
            found = resp.status_code == 200
            self.recorder.record(process, "ok", "get", {
                "found": found, "value": data.get("value"), "version": data.get("version"),
                "vector_clock": data["vector_clock"], "siblings": data.get("siblings", [])})
            return _merge(context, data["vector_clock"])
        self.recorder.record(process, "fail", "get", {"status": resp.status_code, **data})
        return context

    # -- the monitor: is each substation reachable and answering, seen from outside? -------
    def _monitor(self) -> None:
        """Probe every substation's /health twice a second (process `mon`), so the checker can
        tell a refusal while a substation was up from one while it was too slow to answer,
        without trusting the balancer's own view of health."""
        http = requests.Session()
        while not self.stop_event.is_set():
            for name, url in self.substation_urls.items():
                self.recorder.record("mon", "invoke", "probe", {"substation": name})
                try:
                    ok = http.get(f"{url}/health", timeout=MONITOR_TIMEOUT_S).status_code == 200
                except requests.RequestException:
                    ok = False
                self.recorder.record("mon", "ok" if ok else "fail", "probe", {"substation": name})
            # What the balancer believes (for explaining a report, never for judging it).
            self.recorder.record("mon", "invoke", "balancer-view", {})
            try:
                subs = http.get(f"{self.balancer_url}/status",
                                timeout=MONITOR_TIMEOUT_S).json()["substations"]
                self.recorder.record("mon", "ok", "balancer-view", {
                    "healthy": {s["name"]: s["healthy"] for s in subs},
                    "load_kw": {s["name"]: s["load_kw"] for s in subs}})
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                self.recorder.record("mon", "fail", "balancer-view", {"error": str(exc)[:200]})
            self.stop_event.wait(MONITOR_INTERVAL_S)

    # -- EV drivers ------------------------------------------------------------------------
    def _ev(self, i: int, seed: int) -> None:
        rng = random.Random(f"{seed}-ev-{i}")
        process = f"ev{i}"
        http = requests.Session()
        mine: list[str] = []
        while not self.stop_event.is_set():
            if mine and rng.random() < 0.25:
                self._end(http, process, mine.pop(rng.randrange(len(mine))))
            else:
                power = rng.choice((7.4, 11.0, 22.0))
                args = {"vehicle_id": f"EV-{process}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}",
                        "power_kw": power, "min_power_kw": 3.7,
                        "duration_s": round(rng.uniform(3.0, 10.0), 1)}
                session = self._charge(http, process, args)
                if session:
                    mine.append(session)
            self.stop_event.wait(rng.uniform(0.05, 0.25))

    def _charge(self, http, process, args) -> str | None:
        resp = self._call(process, "charge", args, http.post, f"{self.balancer_url}/charge",
                          json=args)
        if resp is None:
            return None
        data = _json(resp)
        if resp.status_code == 200:
            value = {k: data.get(k) for k in ("session_id", "substation", "power_kw",
                                               "ends_at", "load_kw", "capacity_kw")}
            if "allocated_kw" in data:
                value["allocated_kw"] = data["allocated_kw"]
            value["ends_at_epoch"] = datetime.fromisoformat(data["ends_at"]).timestamp()
            self.recorder.record(process, "ok", "charge", value)
            return data["session_id"]
        type_ = "fail" if resp.status_code in (400, 404, 409, 413, 503) else "info"
        self.recorder.record(process, type_, "charge", {"status": resp.status_code, **data})
        return None

    def _end(self, http, process, session_id: str) -> None:
        resp = self._call(process, "end", {"session_id": session_id}, http.delete,
                          f"{self.balancer_url}/sessions/{session_id}")
        if resp is None:
            return
        type_ = "ok" if resp.status_code == 200 else (
            "fail" if resp.status_code < 500 else "info")
        self.recorder.record(process, type_, "end", {"status": resp.status_code,
                                                     **_json(resp)})


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {"error": f"not JSON: {resp.text[:200]}"}
    return data if isinstance(data, dict) else {"error": "not an object"}
