"""Hand-written histories and final states for the checker's tests."""

from __future__ import annotations

import copy
from typing import Any

NODES = ["node1", "node2", "node3"]


class History:
    """Builds a history the way the recorder does: invoke, then completion, in time order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.t = 0.0

    def _add(self, process: str, type_: str, f: str, value: dict | None) -> None:
        self.t += 0.01
        self.entries.append({"index": len(self.entries), "time": round(self.t, 6),
                             "process": process, "type": type_, "f": f, "value": value})

    def at(self, t: float) -> History:
        self.t = t
        return self

    def op(self, process: str, f: str, args: dict, type_: str, result: dict | None,
           took: float = 0.01) -> History:
        self._add(process, "invoke", f, args)
        self.t += took
        self._add(process, type_, f, result)
        return self

    def put(self, process: str, node: int, key: str, value: str, version: list[int],
            context: list[int] | None = None, clock: list[int] | None = None) -> History:
        return self.op(process, "put", {"node": node, "key": key, "value": value,
                                        "context": context},
                       "ok", {"node": node, "version": version,
                              "vector_clock": clock or version,
                              "siblings": [{"value": value, "version": version,
                                            "origin": node}]})

    def get(self, process: str, node: int, key: str, siblings: list[tuple[str, list[int], int]],
            clock: list[int], context: list[int] | None = None) -> History:
        sibs = [{"value": v, "version": ver, "origin": o} for v, ver, o in siblings]
        return self.op(process, "get", {"node": node, "key": key, "context": context}, "ok",
                       {"found": bool(sibs), "vector_clock": clock, "siblings": sibs})

    def charge(self, process: str, power: float, substation: str | None, ends_in: float,
               min_power: float = 3.7, refused: bool = False, allocated: float | None = None,
               session: str | None = None, duration: float = 10.0) -> History:
        args = {"vehicle_id": f"EV-{len(self.entries)}", "power_kw": power,
                "min_power_kw": min_power, "duration_s": duration}
        if refused:
            return self.op(process, "charge", args, "fail",
                           {"status": 503, "error": "no substation can take it"})
        result = {"session_id": session or f"{substation}.{len(self.entries):016x}",
                  "substation": substation, "power_kw": power,
                  "ends_at_epoch": WALL_START + self.t + 0.01 + ends_in}
        if allocated is not None:
            result["allocated_kw"] = allocated
        return self.op(process, "charge", args, "ok", result)

    def probe(self, substation: str, ok: bool = True) -> History:
        return self.op("mon", "probe", {"substation": substation}, "ok" if ok else "fail",
                       {"substation": substation})

    def end(self, process: str, session_id: str, ok: bool = True) -> History:
        return self.op(process, "end", {"session_id": session_id}, "ok" if ok else "fail",
                       {"status": 200 if ok else 404})

    def fault(self, fid: int, kind: str, start: float, end: float | None, **value) -> History:
        grid = kind in ("grid-redis-cut",) or value.get("grid", False)
        self.entries.append({"index": len(self.entries), "time": start, "process": "nemesis",
                             "type": "info", "f": "fault",
                             "value": {"id": fid, "kind": kind, "grid": grid, **value}})
        if end is not None:
            self.entries.append({"index": len(self.entries), "time": end,
                                 "process": "nemesis", "type": "info", "f": "heal",
                                 "value": {"id": fid, "kind": kind}})
        self.entries.sort(key=lambda e: e["time"])
        for i, e in enumerate(self.entries):
            e["index"] = i
        return self


WALL_START = 1_800_000_000.0


def event(seq: int, origin: int, key: str, value: str, version: list[int],
          kind: str = "replicated", sync: bool = False) -> dict:
    e = {"seq": seq, "origin": origin, "key": key, "value": value, "version": version,
         "kind": kind, "buffered_ms": 0}
    if sync:
        e["sync"] = True
    return e


def final_state(events: dict[str, list[dict]], store: dict[str, dict[str, list]],
                clock: list[int], capacities: dict[str, float] | None = None) -> dict:
    """`store` maps key -> siblings [(value, version, origin)], the same on every node unless
    overridden afterwards."""
    def entry(sibs):
        if not sibs:
            return None
        best = max(sibs, key=lambda s: (sum(s[1]), s[2]))
        return {"value": best[0], "version": best[1],
                "siblings": [{"value": v, "version": ver, "origin": o} for v, ver, o in sibs]}

    per_node = {name: {key: entry(sibs) for key, sibs in store.items()} for name in NODES}
    return {
        "nodes": list(NODES), "wall_start": WALL_START,
        "status": {name: {"vector_clock": list(clock), "buffer": [], "outbox": {"1": 0}}
                   for name in NODES},
        "events": {name: copy.deepcopy(events.get(name, [])) for name in NODES},
        "store": per_node,
        "substations": {name: {"capacity_kw": cap} for name, cap in
                        (capacities or {"substation1": 30.0, "substation2": 20.0}).items()},
    }
