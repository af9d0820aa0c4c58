"""Checks of the smart grid, from the recorded admissions, ends and refusals alone.

What the outside can know: a session is surely active from the moment its admission was
acknowledged until the first of (its end was requested, its `ends_at` passed); it may be active
from the moment its admission was requested until the first of (its end was acknowledged, its
`ends_at`, for an unknown outcome the requested duration, passed). Smart charging may lower a
session's allocation later, down to its `min_power_kw`, so a session surely claims at least
that minimum (or, without smart charging, the power it was granted) and at most the power it
asked for. Capacities are the substations' own `capacity_kw` at the end, and the sessions they
still list at the end must each belong to the admission their driver was told about.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chaos.checker.history import Fault, Op

EPS = 1e-6
CLOCK_MARGIN_S = 0.5  # Redis time vs. this machine's wall clock, and request latency
REACHABLE_GRACE_S = 6.0  # after a grid fault heals, the balancer's health checks catch up
# How long after a request is unblocked it can still take effect: the balancer gives each of
# the three substations a 1 s deadline, plus slack. A request stuck behind a paused or cut-off
# process is unblocked when that fault heals, which may be long after its client gave up.
IN_FLIGHT_S = 5.0


def _ends(ops: list[Op]) -> dict[str, list[Op]]:
    out: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f == "end":
            out[op.args["session_id"]].append(op)
    return out


def _ends_at(op: Op, wall_start: float) -> float:
    """`ends_at` (epoch seconds) on the history's clock."""
    return float(op.result["ends_at_epoch"]) - wall_start


def sure_intervals(ops: list[Op], wall_start: float) -> list[tuple[float, float, float, Op]]:
    """(from, to, minimum claim kW, admission) of every acknowledged session."""
    ends = _ends(ops)
    out = []
    for op in ops:
        if op.f != "charge" or op.type != "ok":
            continue
        res = op.result
        stop = _ends_at(op, wall_start) - CLOCK_MARGIN_S
        for end in ends.get(res["session_id"], []):
            stop = min(stop, end.start)
        if "allocated_kw" in res:  # smart charging: it may be lowered to its minimum
            claim = float(op.args.get("min_power_kw", 1.4))
        else:
            claim = float(res["power_kw"])
        if stop > op.end:
            out.append((op.end, stop, claim, op))
    return out


def check_capacity(ops: list[Op], final: dict[str, Any]) -> list[dict]:
    """At no instant do the sessions surely active on a substation surely claim more than its
    capacity."""
    violations = []
    capacity = capacities(final)
    by_sub: dict[str, list] = defaultdict(list)
    for start, stop, claim, op in sure_intervals(ops, final["wall_start"]):
        by_sub[op.result["substation"]].append((start, stop, claim, op))
    for name, intervals in by_sub.items():
        if name not in capacity:
            continue
        points = sorted([(s, 1, i) for i, (s, _, _, _) in enumerate(intervals)]
                        + [(e, 0, i) for i, (_, e, _, _) in enumerate(intervals)])
        active: set[int] = set()
        reported = False
        for t, is_start, i in points:
            if not is_start:
                active.discard(i)
                reported = False
                continue
            active.add(i)
            load = sum(intervals[j][2] for j in active)
            if load > capacity[name] + EPS and not reported:
                reported = True  # once per overload episode
                violations.append({
                    "kind": "over-capacity", "substation": name,
                    "detail": f"{name} surely held {load:.1f} kW > {capacity[name]:.1f} kW "
                              f"at t={t:.3f}s ({len(active)} sessions)",
                    "ops": [intervals[j][3].ref() for j in sorted(active)]})
    return violations


def capacities(final: dict[str, Any]) -> dict[str, float]:
    return {name: float(sub["capacity_kw"])
            for name, sub in final.get("substations", {}).items() if "capacity_kw" in sub}


def grid_faults_near(faults: list[Fault], start: float, end: float) -> list[Fault]:
    return [f for f in faults if f.value.get("grid")
            and f.start <= end and f.end + REACHABLE_GRACE_S >= start]


def _unblocked(op: Op, faults: list[Fault]) -> float:
    """The latest moment an unknown-outcome request may still have been stuck: its client's
    timeout, or the heal of a grid fault that overlapped it (never, if one never healed)."""
    latest = op.end
    for fault in faults:
        if fault.value.get("grid") and fault.start <= op.end and fault.end >= op.start:
            latest = max(latest, fault.end)
    return latest


PROBE_BEFORE_S = 3.0  # the balancer's health view may lag a failed check by ~2 intervals
PROBE_AFTER_S = 1.0


def answering(probes: dict[str, list[Op]], sub: str, start: float, end: float) -> bool:
    """The monitor saw `sub` answer every probe around [start, end], at least one before and
    one after. Without any monitor in the history, every substation counts as answering."""
    if not probes:
        return True
    near = [p for p in probes.get(sub, [])
            if p.start >= start - PROBE_BEFORE_S and p.start <= end + PROBE_AFTER_S]
    return (all(p.type == "ok" for p in near) and any(p.start <= start for p in near)
            and any(p.start >= end for p in near))


def check_refusals(ops: list[Op], faults: list[Fault], final: dict[str, Any]) -> tuple[list, int]:
    """A refusal (503 from the balancer) while no grid fault was near and some substation's
    possible load left room for the whole request, and the monitor saw that substation answer
    its health probes all around the refusal, is a violation. Returns the violations and how
    many refusals could be judged (no grid fault near)."""
    wall_start = final["wall_start"]
    capacity = capacities(final)
    ends = _ends(ops)
    charges = [op for op in ops if op.f == "charge"]
    probes: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f == "probe":
            probes[op.args["substation"]].append(op)
    violations, judged = [], 0
    for refusal in charges:
        if refusal.type != "fail" or refusal.result.get("status") != 503:
            continue
        if grid_faults_near(faults, refusal.start, refusal.end):
            continue
        judged += 1
        possible, _ = possible_load([op for op in charges if op is not refusal], ends, faults,
                                    wall_start, refusal.start, refusal.end, list(capacity))
        need = float(refusal.args.get("power_kw", 7.4))
        for sub, cap in capacity.items():
            if cap - possible[sub] >= need - EPS and answering(probes, sub, refusal.start,
                                                                refusal.end):
                violations.append({
                    "kind": "refused-with-room", "substation": sub,
                    "detail": f"refused {need} kW at t={refusal.start:.3f}s while {sub} held at "
                              f"most {possible[sub]:.1f} of {cap:.1f} kW, answered every probe "
                              f"around it, and no grid fault was within "
                              f"{REACHABLE_GRACE_S:.0f}s; the balancer said "
                              f"{refusal.result.get('detail') or refusal.result.get('error')!r},"
                              f" tried {refusal.result.get('tried')}",
                    "ops": [refusal.ref()]})
                break
    return violations, judged


def check_phantoms(ops: list[Op], final: dict[str, Any]) -> tuple[list, int]:
    """Every session a substation still holds at the end belongs to the one admission its
    driver was told about. A session for a request answered with a refusal or error is a
    phantom (capacity held for nobody); one whose id differs from the id the driver got is a
    double admission. A request with an unknown outcome may own any session."""
    by_vehicle = {op.args.get("vehicle_id"): op for op in ops if op.f == "charge"}
    violations, seen = [], 0
    for name, sub in final.get("substations", {}).items():
        for session in sub.get("sessions") or []:
            op = by_vehicle.get(session.get("vehicle_id"))
            if op is None:
                continue  # not one of ours
            seen += 1
            if op.type == "fail":
                violations.append({
                    "kind": "phantom-session", "substation": name,
                    "detail": f"{name} holds session {session.get('session_id')} for "
                              f"{session.get('vehicle_id')}, whose request was answered "
                              f"{op.result.get('status', op.result.get('error'))}",
                    "ops": [op.ref()]})
            elif op.type == "ok" and op.result.get("session_id") != session.get("session_id"):
                violations.append({
                    "kind": "double-admission", "substation": name,
                    "detail": f"{name} holds session {session.get('session_id')} for "
                              f"{session.get('vehicle_id')}, who was given "
                              f"{op.result.get('session_id')}",
                    "ops": [op.ref()]})
    return violations, seen


def possible_load(charges: list[Op], ends: dict[str, list[Op]], faults: list[Fault],
                  wall_start: float, start: float, end: float, subs: list[str]
                  ) -> tuple[dict[str, float], dict[str, list[Op]]]:
    """The most power each substation can hold at some moment of [start, end] for the drivers
    of this history (an upper bound), and the admissions behind it."""
    possible: dict[str, float] = defaultdict(float)
    holders: dict[str, list[Op]] = defaultdict(list)
    for op in charges:
        if op.type == "fail" or op.start >= end:
            continue
        if op.type == "ok":
            until = _ends_at(op, wall_start) + CLOCK_MARGIN_S
            for e in ends.get(op.result["session_id"], []):
                if e.type == "ok":
                    until = min(until, e.end)
            where = [op.result["substation"]]
        else:
            until = _unblocked(op, faults) + IN_FLIGHT_S + \
                float(op.args.get("duration_s", 60)) + CLOCK_MARGIN_S
            where = subs
        if until < start:
            continue
        for sub in where:
            possible[sub] += float(op.args.get("power_kw", 7.4))
            holders[sub].append(op)
    return possible, holders


def check_phantom_load(ops: list[Op], faults: list[Fault], final: dict[str, Any]) -> list:
    """The monitor reads the balancer's /status now and then; a substation said to carry more
    load than every driver together could hold there holds power for nobody (e.g. a session
    admitted after the balancer gave up on the substation and told the driver no). Requests
    answered "timeout" on that substation shortly before are named as suspects."""
    views = [op for op in ops if op.f == "balancer-view" and op.type == "ok"]
    if not views:
        return []
    charges = [op for op in ops if op.f == "charge"]
    subs = list(capacities(final))
    ends = _ends(ops)
    violations, reported = [], set()
    for view in views:
        loads = view.result.get("load_kw") or {}
        possible, _ = possible_load(charges, ends, faults, final["wall_start"], view.start,
                                    view.end, subs)
        for sub, load in loads.items():
            excess = float(load) - possible[sub]
            if excess <= 0.05 or sub in reported:
                continue
            reported.add(sub)  # once per substation: the first sighting says it all
            # answered after a timeout on `sub`, or admitted elsewhere only after more than
            # the balancer's 1 s per-try timeout (it may have timed out on `sub` first)
            suspects = [op for op in charges if view.start - 15.0 < op.start < view.start and (
                f"{sub} timeout" in str(op.result.get("detail", ""))
                or (op.type == "ok" and op.result.get("substation") != sub
                    and op.end - op.start >= 1.0))]
            violations.append({
                "kind": "phantom-load", "substation": sub,
                "detail": f"at t={view.start:.3f}s the balancer reported {float(load):.1f} kW on "
                          f"{sub}, {excess:.1f} kW more than all drivers could hold there; "
                          f"suspects: {len(suspects)} request(s) answered after a timeout "
                          f"on {sub} or after over 1 s elsewhere, in the 15 s before",
                "ops": [view.ref()] + [op.ref() for op in suspects]})
    return violations


def check(ops: list[Op], faults: list[Fault], final: dict[str, Any]) -> tuple[list, dict]:
    refused, judged = check_refusals(ops, faults, final)
    phantoms, sessions_seen = check_phantoms(ops, final)
    violations = check_capacity(ops, final) + refused + phantoms + \
        check_phantom_load(ops, faults, final)
    charges = [op for op in ops if op.f == "charge"]
    counts = {
        "charges_admitted": sum(op.type == "ok" for op in charges),
        "charges_refused": sum(op.type == "fail" and op.result.get("status") == 503
                               for op in charges),
        "charges_failed_other": sum(op.type == "fail" and op.result.get("status") != 503
                                    for op in charges),
        "charges_unknown": sum(op.type == "info" for op in charges),
        "sessions_ended": sum(op.f == "end" and op.type == "ok" for op in ops),
        "refusals_judged": judged,
        "final_sessions_matched": sessions_seen,
        "substation_probes": sum(op.f == "probe" for op in ops),
    }
    return violations, counts
