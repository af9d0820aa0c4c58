"""Pure parts of the load test: RUN_TIME parsing, the rush-hour phase math, causal-clock checks,
and reading Locust's CSV reports back."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import config
from loadtest.clocks import clock_below, merge_clock
from loadtest.driving import is_grid_refusal, pick_power_kw, session_duration_s
from loadtest.plan import PHASES, RushHourPlan, auto_peak_users
from loadtest.reports import summarize

# Nothing here imports locust: it monkey-patches the whole interpreter with gevent on import.


@pytest.mark.parametrize(("text", "seconds"), [
    ("60s", 60), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2m30s", 150), ("90", 90),
    (" 10S ", 10), ("1.5m", 90),
])
def test_parse_timespan(text, seconds):
    assert config.parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m5", "0s", "5m-", "s"])
def test_parse_timespan_rejects(text):
    with pytest.raises(ValueError):
        config.parse_timespan(text)


def test_run_time_prefers_locust_option_then_env(monkeypatch):
    monkeypatch.setenv("RUN_TIME", "2m")
    assert config.run_time_s(45) == 45
    assert config.run_time_s(None) == 120
    monkeypatch.delenv("RUN_TIME")
    assert config.run_time_s(None) == config.DEFAULT_RUN_TIME_S


def test_phase_fractions_cover_the_run():
    assert sum(f for _, f in PHASES) == pytest.approx(1.0)
    plan = RushHourPlan.build(100, 40)
    bounds = plan.boundaries()
    assert [name for name, _, _ in bounds] == ["quiet", "ramp", "peak", "decline"]
    assert [(round(s, 6), round(e, 6)) for _, s, e in bounds] == [
        (0, 15), (15, 40), (40, 70), (70, 100)]


def test_plan_users_over_time():
    plan = RushHourPlan.build(100, 40)
    assert plan.quiet_users == 4
    assert plan.phase_at(0) == "quiet" and plan.users_at(0) == 4
    assert plan.users_at(14.9) == 4
    assert plan.phase_at(15) == "ramp" and plan.users_at(15) == 4
    assert plan.users_at(27.5) == 4 + 18  # halfway up the ramp
    assert plan.phase_at(40) == "peak" and plan.users_at(40) == plan.users_at(69.9) == 40
    assert plan.phase_at(85) == "decline" and plan.users_at(85) == 40 - 18
    assert plan.users_at(99.99) >= plan.quiet_users
    assert plan.phase_at(100) is None and plan.users_at(100) is None
    counts = [plan.users_at(t / 10) for t in range(0, 1000)]
    assert max(counts) == 40 and min(counts) == 4
    ramp = counts[150:400]
    assert ramp == sorted(ramp)  # never goes down while ramping


def test_plan_scales_with_run_time():
    short, long = RushHourPlan.build(10, 40), RushHourPlan.build(3600, 40)
    for fraction in (0.1, 0.3, 0.5, 0.8, 0.99):
        assert short.phase_at(fraction * 10) == long.phase_at(fraction * 3600)
        assert short.users_at(fraction * 10) == long.users_at(fraction * 3600)
    assert short.spawn_rate > long.spawn_rate >= 1.0


def test_plan_rejects_nonsense():
    with pytest.raises(ValueError):
        RushHourPlan.build(0, 10)
    with pytest.raises(ValueError):
        RushHourPlan.build(10, 0)
    assert RushHourPlan.build(10, 1).quiet_users == 1


def test_auto_peak_users_demands_more_than_capacity():
    mean = config.mean_power_kw()
    assert 3.7 < mean < 50
    peak = auto_peak_users(300, mean, ev_share=0.8)
    assert peak * 0.8 * mean > 300 * 1.4
    assert auto_peak_users(600, mean, ev_share=0.8) > peak
    with pytest.raises(ValueError):
        auto_peak_users(300, mean, ev_share=0)


def test_power_mix_and_durations():
    rng = random.Random(7)
    levels = {kw for kw, _ in config.POWER_MIX}
    picks = [pick_power_kw(rng) for _ in range(2000)]
    assert set(picks) == levels  # every level shows up in a big enough sample
    assert picks.count(7.4) > picks.count(50.0)
    durations = [session_duration_s(60, rng) for _ in range(200)]
    assert min(durations) >= 6 and max(durations) <= 15
    assert session_duration_s(2, rng) == 1.0  # never below a second


def test_clock_checks():
    assert not clock_below([1, 2, 3], [1, 2, 3])
    assert not clock_below([2, 2, 4], [1, 2, 3])
    assert clock_below([1, 1, 3], [1, 2, 3])
    assert clock_below([1, 2], [1, 2, 3])
    assert clock_below("1,2,3", [1, 2, 3])
    assert clock_below([1, "2", 3], [0, 0, 0])
    assert merge_clock([1, 5, 0], [2, 3, 0]) == [2, 5, 0]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_summarize_separates_refusals_from_failures(tmp_path):
    prefix = tmp_path / "run"
    stats_header = ["Type", "Name", "Request Count", "Failure Count"]
    _write_csv(tmp_path / "run_stats.csv", stats_header, [
        ["POST", "/charge", 50, 2], ["POST", config.REFUSED_NAME, 20, 0],
        ["PUT", "/kv/[key]", 30, 0], ["", "Aggregated", 100, 2]])
    _write_csv(tmp_path / "run_failures.csv", ["Method", "Name", "Error", "Occurrences"], [
        ["POST", "/charge", "HTTPError 500", 2]])
    summary = summarize(prefix)
    assert summary.total_requests == 100
    assert (summary.admitted, summary.refused, summary.failure_count) == (48, 20, 2)
    assert summary.count("/kv/") == 30
    assert any("FAILURE x2" in line for line in summary.lines())

    _write_csv(tmp_path / "run_failures.csv", ["Method", "Name", "Error", "Occurrences"], [
        ["POST", config.REFUSED_NAME, "should never be here, but is not a failure", 1]])
    assert summarize(prefix).failures == [] and summarize(prefix).ok

    _write_csv(tmp_path / "run_exceptions.csv", ["Count", "Message", "Traceback", "Nodes"], [
        [3, "'list' object is not callable", "...", "local"]])
    summary = summarize(prefix)
    assert not summary.ok and summary.exceptions[0]["Count"] == "3"
    assert any("EXCEPTION x3" in line for line in summary.lines())


def test_shape_ticks_from_env_in_a_subprocess():
    """RushHourShape itself imports locust (gevent patching), so it is exercised out of process."""
    code = (
        "from loadtest.shapes import RushHourShape\n"
        "shape = RushHourShape()\n"
        "plan = shape.plan()\n"
        "first = shape.tick()\n"
        "shape.start_time -= 10.5\n"
        "print(plan.total_s, plan.peak_users, first[0], first[1] >= 1, shape.tick())\n"
    )
    env = {**os.environ, "RUN_TIME": "10s", "PEAK_USERS": "12"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["10.0", "12", str(RushHourPlan.build(10, 12).quiet_users), "True", "None"]


def test_grid_refusal_is_a_503_with_retry_after_and_not_an_outage():
    no_room = {"error": "no substation has room", "retry_after": 3}
    assert is_grid_refusal(503, "3", no_room)
    assert not is_grid_refusal(503, None, no_room)  # no Retry-After: not the documented refusal
    assert not is_grid_refusal(503, "1", {"error": "redis unavailable"})  # an outage
    assert not is_grid_refusal(503, "1", None)  # not JSON
    assert not is_grid_refusal(500, "1", no_room)
    assert not is_grid_refusal(200, None, {"session_id": "x"})
