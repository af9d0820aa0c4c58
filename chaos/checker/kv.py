"""Checks of the causal KV store, from the history and each node's public final state.

A write is named by (origin, n): the n-th write made at node `origin` (its version's own
entry). Only versions (vector clocks) are compared, never values, so the rules are those of
causal memory, not of the product's code.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from typing import Any

from chaos.checker.clocks import Clock, clock, covered, leq
from chaos.checker.history import Fault, Op

Violation = dict[str, Any]
WriteId = tuple[int, int]


def write_id(version: Clock, origin: int) -> WriteId:
    return (origin, version[origin])


def acked_writes(ops: list[Op]) -> dict[WriteId, Op]:
    out = {}
    for op in ops:
        if op.f == "put" and op.type == "ok":
            version = clock(op.result["version"])
            out[write_id(version, int(op.result["node"]))] = op
    return out


def lost_to_disk_loss(acked: dict[WriteId, Op], faults: list[Fault], nodes: list[str],
                      seen_elsewhere: dict[WriteId, set[int]]) -> set[WriteId]:
    """Writes a node acknowledged before its own disk was lost and that no other node ever
    delivered or holds: they existed only on the lost disk (allowed, counted, not a bug)."""
    lost = set()
    for wid, op in acked.items():
        origin = wid[0]
        for fault in faults:
            if (fault.kind == "disk-loss" and fault.value.get("node") == nodes[origin]
                    and op.end <= fault.start
                    and not (seen_elsewhere.get(wid, set()) - {origin})):
                lost.add(wid)
    return lost


def seen_by(final: dict[str, Any]) -> dict[WriteId, set[int]]:
    """Which nodes delivered (event logs) or hold (final stores) each write."""
    nodes = final["nodes"]
    out: dict[WriteId, set[int]] = defaultdict(set)
    for i, name in enumerate(nodes):
        for event in final.get("events", {}).get(name, []):
            version = clock(event["version"])
            out[write_id(version, int(event["origin"]))].add(i)
        for entry in (final.get("store", {}).get(name) or {}).values():
            for sib in (entry or {}).get("siblings", []):
                out[write_id(clock(sib["version"]), int(sib["origin"]))].add(i)
    return out


def check_delivery_logs(final: dict[str, Any], acked: dict[WriteId, Op]) -> list[Violation]:
    """Causal order and at-most-once in every node's delivery log.

    An event with version v depends on every write (k, i) with i <= v[k] (k != origin) and on
    the origin's own earlier writes. A dependency delivered *after* the event is a causal
    violation; one never delivered is not (anti-entropy may skip superseded versions, and the
    log is bounded). A write delivered twice is a duplicate.
    """
    violations = []
    for name in final["nodes"]:
        events = final.get("events", {}).get(name, [])
        n = len(final["nodes"])
        # per origin: sorted write numbers and, for each, the latest position of any write
        # with a number <= it (prefix maximum), to find a late dependency in O(log n)
        positions: dict[int, list[tuple[int, int]]] = defaultdict(list)
        seen: dict[WriteId, dict] = {}
        for pos, event in enumerate(events):
            version = clock(event["version"])
            wid = write_id(version, int(event["origin"]))
            if wid in seen:
                violations.append({
                    "kind": "duplicate-delivery", "node": name,
                    "detail": f"write {wid} delivered twice (seq {seen[wid]['seq']} and "
                              f"{event['seq']})",
                    "events": [seen[wid]["seq"], event["seq"]], "ops": _ops(acked, [wid])})
                continue
            seen[wid] = event
            positions[wid[0]].append((wid[1], pos))
        index = {}
        for origin, items in positions.items():
            items.sort()
            prefix, best = [], -1
            for _, pos in items:
                best = max(best, pos)
                prefix.append(best)
            index[origin] = ([number for number, _ in items], prefix, items)
        for pos, event in enumerate(events):
            version = clock(event["version"])
            origin = int(event["origin"])
            for k in range(n):
                bound = version[k] - (1 if k == origin else 0)
                if k not in index or bound <= 0:
                    continue
                numbers, prefix, items = index[k]
                at = bisect.bisect_right(numbers, bound) - 1
                if at < 0 or prefix[at] <= pos:
                    continue
                late = next(events[p] for number, p in items[:at + 1] if p > pos)
                late_id = write_id(clock(late["version"]), int(late["origin"]))
                violations.append({
                    "kind": "causal-order", "node": name,
                    "detail": f"seq {event['seq']} (write {write_id(version, origin)} of key "
                              f"{event['key']!r}, version {list(version)}) delivered before its "
                              f"dependency seq {late['seq']} (write {late_id} of key "
                              f"{late['key']!r}, version {late['version']})",
                    "events": [event["seq"], late["seq"]],
                    "ops": _ops(acked, [write_id(version, origin), late_id])})
                break
    return violations


def _ops(acked: dict[WriteId, Op], wids: list[WriteId]) -> list[dict]:
    return [acked[w].ref() for w in wids if w in acked]


def check_presence(final: dict[str, Any], acked: dict[WriteId, Op],
                   lost: set[WriteId]) -> list[Violation]:
    """Every acknowledged write is, at the end, on every node: its version or one that
    dominates it is among the key's siblings."""
    violations = []
    for wid, op in sorted(acked.items(), key=lambda item: item[1].index):
        if wid in lost:
            continue
        version = clock(op.result["version"])
        key = op.args["key"]
        missing = []
        for name in final["nodes"]:
            entry = (final.get("store", {}).get(name) or {}).get(key)
            siblings = [clock(s["version"]) for s in (entry or {}).get("siblings", [])]
            if not covered(version, siblings):
                missing.append(name)
        if missing:
            violations.append({
                "kind": "lost-write", "nodes": missing,
                "detail": f"acknowledged write {wid} of key {key!r} "
                          f"(value {op.args.get('value')!r}, version {list(version)}) is "
                          f"neither present nor superseded on "
                          f"{', '.join(missing)}",
                "ops": [op.ref()]})
    return violations


def check_sessions(ops: list[Op], lost: set[WriteId]) -> list[Violation]:
    """Per client session (one process): the node honoured the context it was sent;
    read-your-writes; monotonic reads; writes-follow-reads."""
    violations = []
    by_process: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f in ("get", "put"):
            by_process[op.process].append(op)
    for process, session in by_process.items():
        written: dict[str, list[tuple[Clock, Op]]] = defaultdict(list)
        read: dict[str, list[tuple[Clock, Op]]] = defaultdict(list)
        observed: list[tuple[Clock, Op]] = []
        for op in session:
            if op.type != "ok":
                continue
            res = op.result
            context = op.args.get("context")
            node_clock = res.get("vector_clock")
            if context is not None and node_clock is not None and not leq(context, node_clock):
                violations.append({
                    "kind": "context-not-honoured", "process": process,
                    "detail": f"{op.f} at node {op.args.get('node')} answered with clock "
                              f"{node_clock} below the context {context} it was sent",
                    "ops": [op.ref()]})
            key = op.args["key"]
            if op.f == "get":
                siblings = [clock(s["version"]) for s in res.get("siblings", [])]
                for version, wop in written[key]:
                    if write_id(version, int(wop.result["node"])) in lost:
                        continue
                    if not covered(version, siblings):
                        violations.append({
                            "kind": "read-your-writes", "process": process,
                            "detail": f"read of {key!r} returned {_shown(res)} without the "
                                      f"session's own earlier write {list(version)}",
                            "ops": [wop.ref(), op.ref()]})
                for version, rop in read[key]:
                    if not covered(version, siblings):
                        violations.append({
                            "kind": "monotonic-reads", "process": process,
                            "detail": f"read of {key!r} returned {_shown(res)}, older than "
                                      f"version {list(version)} read before",
                            "ops": [rop.ref(), op.ref()]})
                        break
                read[key] = _maximal(read[key] + [(v, op) for v in siblings])
                observed = _maximal(observed + [(v, op) for v in siblings])
            else:
                version = clock(res["version"])
                for seen, sop in observed:
                    if not leq(seen, version):
                        violations.append({
                            "kind": "writes-follow-reads", "process": process,
                            "detail": f"write to {key!r} got version {list(version)}, which "
                                      f"does not follow version {list(seen)} the session "
                                      f"had seen",
                            "ops": [sop.ref(), op.ref()]})
                        break
                written[key] = _maximal(written[key] + [(version, op)])
                observed = _maximal(observed + [(version, op)])
    return violations


def _maximal(items: list[tuple[Clock, Op]]) -> list[tuple[Clock, Op]]:
    """The versions no other one dominates (the earliest op kept for equal versions)."""
    out: list[tuple[Clock, Op]] = []
    for version, op in items:
        if any(leq(version, v) for v, _ in out):
            continue
        out = [(v, o) for v, o in out if not leq(v, version)] + [(version, op)]
    return out


def _shown(res: dict) -> str:
    if not res.get("found", True):
        return "404"
    return json.dumps([s["version"] for s in res.get("siblings", [])])


def check_convergence(final: dict[str, Any],
                      acked: dict[WriteId, Op] | None = None) -> list[Violation]:
    """Same clock, same siblings and winner for every key, empty buffers and outboxes."""
    violations = []
    nodes = final["nodes"]
    statuses = final.get("status", {})
    clocks = {}
    for name in nodes:
        status = statuses.get(name) or {}
        if "vector_clock" not in status:
            violations.append({"kind": "unreachable-at-end", "node": name,
                               "detail": f"{name} did not answer /status at the end: "
                                         f"{status.get('error', 'no answer')}", "ops": []})
            continue
        clocks[name] = list(status["vector_clock"])
        buffered = status.get("buffered", len(status.get("buffer") or []))
        outbox = {p: d for p, d in (status.get("outbox") or {}).items() if d}
        if buffered or outbox:
            violations.append({"kind": "not-drained", "node": name,
                               "detail": f"{name} still buffers {buffered} message(s), "
                                         f"outbox {outbox}", "ops": []})
    if len({json.dumps(c) for c in clocks.values()}) > 1:
        violations.append({"kind": "divergent-clocks", "detail": f"clocks differ: {clocks}",
                           "ops": []})
    stores = final.get("store", {})
    keys = sorted({key for name in nodes for key in (stores.get(name) or {})})
    for key in keys:
        shapes = {}
        for name in nodes:
            entry = (stores.get(name) or {}).get(key)
            if entry is None:
                shapes[name] = "absent"
                continue
            sibs = sorted((json.dumps(s["value"], sort_keys=True), tuple(s["version"]),
                           int(s["origin"])) for s in entry.get("siblings", []))
            shapes[name] = json.dumps([json.dumps(entry.get("value"), sort_keys=True), sibs])
        if len(set(shapes.values())) > 1:
            wids = {write_id(clock(s["version"]), int(s["origin"]))
                    for name in nodes for s in ((stores.get(name) or {}).get(key) or {}).get(
                        "siblings", [])}
            violations.append({"kind": "divergent-key", "key": key,
                               "detail": f"key {key!r} differs between nodes: {shapes}",
                               "ops": _ops(acked or {}, sorted(wids))})
    return violations


def check(ops: list[Op], faults: list[Fault], final: dict[str, Any]) -> tuple[list, dict]:
    acked = acked_writes(ops)
    seen = seen_by(final)
    lost = lost_to_disk_loss(acked, faults, final["nodes"], seen)
    violations = (check_delivery_logs(final, acked) + check_presence(final, acked, lost)
                  + check_sessions(ops, lost) + check_convergence(final, acked))
    kv_ops = [op for op in ops if op.f in ("get", "put")]
    counts = {
        "kv_writes_acked": len(acked),
        "kv_writes_failed": sum(op.f == "put" and op.type == "fail" for op in kv_ops),
        "kv_writes_unknown": sum(op.f == "put" and op.type == "info" for op in kv_ops),
        "kv_reads_ok": sum(op.f == "get" and op.type == "ok" for op in kv_ops),
        "kv_reads_failed": sum(op.f == "get" and op.type != "ok" for op in kv_ops),
        "delivery_events_checked": sum(len(v) for v in final.get("events", {}).values()),
        "keys_compared": len({k for s in final.get("store", {}).values() for k in (s or {})}),
        "writes_lost_to_disk_loss": len(lost),
    }
    return violations, counts
