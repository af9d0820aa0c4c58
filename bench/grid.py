"""Grid figures: balancer vs direct substation (throughput, added latency as a ratio to a bare
proxy hop), the balance quality of every routing strategy under one identical burst, and a rush
hour under the old rule vs smart charging."""

from __future__ import annotations

import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.kv import ab_rounds, side_summary
from bench.loadgen import Connection, Target
from bench.scrape import metric_sum
from bench.settings import BenchSettings
from bench.stats import median_ratio, percentile, spread
from common.procs import wait_until

JSON = {"Content-Type": "application/json"}
STRATEGIES = ("least-utilization", "polled", "p2c", "round-robin")
# Tiny, short sessions: every request is a full admission, and the grid never fills up, so the
# throughput runs measure routing + admission and not refusals.
TINY_CHARGE = '{{"vehicle_id": "bench-{w}-{n}", "power_kw": 0.01, "duration_s": 1}}'
BURST_POWER_KW = 7.4  # the spec's default charge
BURST_DEMAND = 1.1  # the burst asks for 110 % of the grid's total capacity
WAVE1_DEMAND = 0.6  # balance is judged after the first 60 %, before anything must be refused
BURST_SESSION_S = 600  # nothing expires during a burst
BURST_THREADS = 8


def charge_target(base_url: str) -> Target:
    return Target(base_url, "POST", "/charge", TINY_CHARGE)


def throughput(balancer: str, substation: str, s: BenchSettings, log) -> dict:
    log("Grid: POST /charge throughput through the balancer vs straight to substation1")
    bal_runs, direct_runs = ab_rounds(charge_target(balancer), charge_target(substation), s, log)
    return {
        "balancer": side_summary(bal_runs),
        "direct": side_summary(direct_runs),
        "ratio": median_ratio([r.throughput for r in bal_runs],
                              [r.throughput for r in direct_runs]),
    }


def _sequential(conn: Connection, samples: int, tag: str) -> list[float]:
    times = []
    for i in range(samples):
        body = json.dumps({"vehicle_id": f"lat-{tag}-{i}", "power_kw": 0.01, "duration_s": 1})
        t0 = time.perf_counter()
        status, _ = conn.request("POST", "/charge", body.encode(), JSON)
        if status == 200:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def added_latency(balancer: str, substation: str, proxy: str, s: BenchSettings, log) -> dict:
    """One client, one request at a time: what the extra hop costs at light load, next to what
    a bare pass-through (bench/proxy_app.py, the floor of one hop here) adds."""
    log("Grid: latency added by the balancer and by a bare proxy (one client, sequential)")
    rounds = []
    names = ("balancer", "proxy", "direct")
    for r in range(s.rounds):
        conns = {"balancer": Connection(balancer), "proxy": Connection(proxy),
                 "direct": Connection(substation)}
        order = names if r % 2 == 0 else tuple(reversed(names))
        got = {name: _sequential(conns[name], s.latency_samples, f"{r}-{name}")
               for name in order}
        for conn in conns.values():
            conn.close()
        row = {f"{name}_{q}_ms": percentile(got[name], p)
               for name in names for q, p in (("p50", 50), ("p99", 99))}
        row["added_p50_ms"] = row["balancer_p50_ms"] - row["direct_p50_ms"]
        row["added_p99_ms"] = row["balancer_p99_ms"] - row["direct_p99_ms"]
        row["proxy_added_p50_ms"] = row["proxy_p50_ms"] - row["direct_p50_ms"]
        row["added_ratio_to_proxy"] = row["added_p50_ms"] / max(row["proxy_added_p50_ms"],
                                                                1e-6)
        rounds.append(row)
        log(f"  round {r + 1}: balancer p50 {row['balancer_p50_ms']:.2f} ms, direct p50 "
            f"{row['direct_p50_ms']:.2f} ms, added p50 {row['added_p50_ms']:.2f} ms, "
            f"added p99 {row['added_p99_ms']:.2f} ms; bare proxy adds "
            f"{row['proxy_added_p50_ms']:.2f} ms p50 (ratio {row['added_ratio_to_proxy']:.2f})")
    return {"rounds": rounds,
            **{key: statistics.median(row[key] for row in rounds) for key in rounds[0]}}


def burst_plan(capacity_kw: float, power_kw: float = BURST_POWER_KW
               ) -> tuple[list[float], list[float]]:
    """Two waves of equal sessions: 60 % of capacity, then up to 110 %.

    Equal sessions make the spread mean something: with a mix, one 50 kW car fills the
    50 kW substation alone and the spread says more about the draw than about the strategy.
    The bound for a balancing strategy is one session's share of the smallest substation."""
    wave1, wave2, total = [], [], 0.0
    while total < BURST_DEMAND * capacity_kw:
        (wave1 if total + power_kw <= WAVE1_DEMAND * capacity_kw else wave2).append(power_kw)
        total += power_kw
    return wave1, wave2


def session_share(balancer: str) -> float:
    """One burst session's share of the smallest substation: the spread a balancer can't beat."""
    return BURST_POWER_KW / min(sub["capacity_kw"] for sub in grid_status(balancer))


def grid_status(balancer: str) -> list[dict]:
    return requests.get(balancer + "/status", timeout=5).json()["substations"]


def _send_wave(balancer: str, powers: list[float], tag: str) -> list[tuple[float, int, str]]:
    """Fire one wave concurrently; (power, status, session_id or '') per request."""
    def one(item: tuple[int, float]) -> tuple[float, int, str]:
        i, power = item
        # The old rule (full power or refusal): herding shows as refusals and retries.
        body = {"vehicle_id": f"burst-{tag}-{i}", "power_kw": power,
                "duration_s": BURST_SESSION_S, "allow_reduced": False}
        try:
            resp = requests.post(balancer + "/charge", json=body, timeout=10)
        except requests.RequestException:
            return power, 0, ""
        session = resp.json().get("session_id", "") if resp.status_code == 200 else ""
        return power, resp.status_code, str(session)

    with ThreadPoolExecutor(BURST_THREADS) as pool:
        return list(pool.map(one, enumerate(powers)))


def clear_sessions(balancer: str, session_ids: list[str]) -> None:
    """Unplug everything a burst left, then wait until every substation reads empty."""
    with ThreadPoolExecutor(BURST_THREADS) as pool:
        list(pool.map(lambda sid: requests.delete(f"{balancer}/sessions/{sid}", timeout=10),
                      session_ids))
    wait_until(lambda: all(sub["load_kw"] < 0.5 for sub in grid_status(balancer)), timeout=30,
               interval=0.2, message="an empty grid")


def set_strategy(balancer: str, token: str, strategy: str) -> None:
    resp = requests.post(balancer + "/admin/strategy", json={"strategy": strategy},
                         headers={"X-Admin-Token": token}, timeout=5)
    resp.raise_for_status()


def one_burst(balancer: str, strategy: str, tag: str, poll_interval_s: float) -> dict:
    subs = grid_status(balancer)
    capacity = sum(sub["capacity_kw"] for sub in subs)
    wave1, wave2 = burst_plan(capacity)
    # The polled strategies route on a view refreshed every POLL_INTERVAL_S; wait one refresh so
    # each strategy starts from the same picture of an empty grid (a bench, not a test: nothing
    # observable to poll for).
    time.sleep(poll_interval_s + 0.5)
    retries0 = metric_sum(balancer, "balancer_retries_total")
    first = _send_wave(balancer, wave1, f"{tag}-1")
    after1 = grid_status(balancer)
    second = _send_wave(balancer, wave2, f"{tag}-2")
    after2 = grid_status(balancer)
    retries = metric_sum(balancer, "balancer_retries_total") - retries0
    results = first + second
    room = max(sub["capacity_kw"] - sub["load_kw"] for sub in after2)
    refused = [power for power, status, _ in results if status == 503]
    # Load only grows during a burst, so room left at the end was there at every refusal too.
    refused_with_room = sum(1 for power in refused if power <= room + 1e-9)
    sessions = [sid for _, status, sid in results if status == 200 and sid]
    clear_sessions(balancer, sessions)
    util1 = {sub["name"]: sub["utilization"] for sub in after1}
    return {
        "strategy": strategy,
        "requests": len(results),
        "admitted": len(sessions),
        "refused": len(refused),
        "errors": sum(1 for _, status, _ in results if status not in (200, 503)),
        "refused_while_capacity_remained": refused_with_room,
        "upstream_retries": retries,
        "utilization_after_wave1": util1,
        "spread_after_wave1": spread(list(util1.values())),
        "utilization_end": {sub["name"]: sub["utilization"] for sub in after2},
        "admitted_kw": sum(power for power, status, _ in results if status == 200),
        "capacity_kw": capacity,
    }


def strategies(balancer: str, admin_token: str, poll_interval_s: float, s: BenchSettings,
               log) -> dict:
    log("Grid: balance quality of every strategy under the same burst "
        f"({int(BURST_DEMAND * 100)} % of capacity in two waves)")
    wait_until(lambda: all(sub["load_kw"] < 0.5 for sub in grid_status(balancer)), timeout=30,
               interval=0.2, message="the throughput runs' sessions to expire")
    runs: dict[str, list[dict]] = {name: [] for name in STRATEGIES}
    try:
        for r in range(s.strategy_rounds):
            order = STRATEGIES if r % 2 == 0 else tuple(reversed(STRATEGIES))
            for strategy in order:
                set_strategy(balancer, admin_token, strategy)
                result = one_burst(balancer, strategy, f"{strategy}-{r}", poll_interval_s)
                runs[strategy].append(result)
                log(f"  {strategy:17s} spread after wave 1 {result['spread_after_wave1']:.2f}, "
                    f"refused {result['refused']}/{result['requests']} "
                    f"({result['refused_while_capacity_remained']} while capacity remained), "
                    f"upstream retries {result['upstream_retries']:.0f}")
    finally:
        set_strategy(balancer, admin_token, "least-utilization")
    summary = {}
    for strategy, results in runs.items():
        summary[strategy] = {
            "spread_after_wave1": statistics.median(r["spread_after_wave1"] for r in results),
            "refused": sum(r["refused"] for r in results),
            "refused_while_capacity_remained": sum(r["refused_while_capacity_remained"]
                                                   for r in results),
            "upstream_retries": sum(r["upstream_retries"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "requests": sum(r["requests"] for r in results),
            "utilization_after_wave1": results[-1]["utilization_after_wave1"],
            "runs": results,
        }
    return summary


# Rush hour: the same arrivals at the same capacity under the old rule (full power or
# refusal: allow_reduced false) and under smart charging (shared down to 1.4 kW).
RUSH_CARS = 90
RUSH_WINDOW_S = 4.0  # arrivals spread over this window
RUSH_SESSION_S = 3.0  # every car charges this long once admitted
RUSH_POWERS_KW = (7.4, 11.0, 22.0)
RUSH_SEED = 12


def rush_plan(cars: int = RUSH_CARS, seed: int = RUSH_SEED) -> list[tuple[float, float]]:
    """(arrival s, power kW) per car, the same for both rules."""
    rng = random.Random(seed)
    return sorted((rng.uniform(0, RUSH_WINDOW_S), rng.choice(RUSH_POWERS_KW))
                  for _ in range(cars))


def _delivered_kwh(substations: list[str]) -> float:
    return sum(requests.get(url + "/status", timeout=5).json()["energy_kwh"]
               for url in substations)


def _one_rush(balancer: str, substations: list[str], smart: bool, tag: str) -> dict:
    plan = rush_plan()
    wait_until(lambda: all(sub["load_kw"] < 0.001 for sub in grid_status(balancer)),
               timeout=60, interval=0.2, message="an empty grid")
    energy0 = _delivered_kwh(substations)
    start = time.monotonic() + 0.2

    def arrive(item: tuple[int, tuple[float, float]]) -> tuple[int, float]:
        i, (at, power) = item
        time.sleep(max(0.0, start + at - time.monotonic()))
        body = {"vehicle_id": f"rush-{tag}-{i}", "power_kw": power,
                "duration_s": RUSH_SESSION_S}
        if not smart:
            body["allow_reduced"] = False
        resp = requests.post(balancer + "/charge", json=body, timeout=10)
        return resp.status_code, (resp.json().get("allocated_kw", 0.0)
                                  if resp.status_code == 200 else 0.0)

    with ThreadPoolExecutor(RUSH_CARS) as pool:
        results = list(pool.map(arrive, enumerate(plan)))
    wait_until(lambda: all(sub["load_kw"] < 0.001 for sub in grid_status(balancer)),
               timeout=60, interval=0.1, message="every rush-hour session over")
    energy = _delivered_kwh(substations) - energy0
    admitted = sum(1 for status, _ in results if status == 200)
    return {
        "rule": "smart charging" if smart else "old rule (full power or refusal)",
        "cars": len(plan), "admitted": admitted,
        "turned_away": sum(1 for status, _ in results if status == 503),
        "errors": sum(1 for status, _ in results if status not in (200, 503)),
        "energy_kwh": round(energy, 4),
        "mean_allocated_kw_at_admission": round(
            statistics.mean(a for s, a in results if s == 200), 3) if admitted else 0.0,
        # time-averaged power per admitted car: delivered energy over its charging time
        "mean_power_kw": round(energy / (admitted * RUSH_SESSION_S / 3600), 3)
        if admitted else 0.0,
        "capacity_kw": sum(sub["capacity_kw"] for sub in grid_status(balancer)),
    }


def rush_hour(balancer: str, substations: list[str], s: BenchSettings, log) -> dict:
    log(f"Grid: rush hour, {RUSH_CARS} cars in {RUSH_WINDOW_S:.0f} s charging "
        f"{RUSH_SESSION_S:.0f} s each: old rule vs smart charging")
    out = {}
    for smart in (False, True):
        row = _one_rush(balancer, substations, smart, "smart" if smart else "old")
        out["smart" if smart else "old"] = row
        log(f"  {row['rule']}: admitted {row['admitted']}/{row['cars']}, turned away "
            f"{row['turned_away']}, energy {row['energy_kwh']:.3f} kWh, mean allocation "
            f"{row['mean_allocated_kw_at_admission']:.2f} kW")
    return out
