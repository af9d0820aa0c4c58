"""Pure logic of the grid: validation, strategy ordering, parsing. No processes."""

from __future__ import annotations

import math
import random

import pytest

from balancer.config import parse_substations
from balancer.poller import parse_utilization
from balancer.ranking import GridView, SubstationView
from balancer.router import retry_after
from balancer.strategies.base import by_polled_utilization
from balancer.strategies.least_utilization import LeastUtilization
from balancer.strategies.p2c import p2c_order
from balancer.strategies.round_robin import rotate
from balancer.upstream import ADMITTED, ERROR, REFUSED, Attempt, classify
from common.settings import ConfigError
from common.web import ApiError
from grid.validation import ChargeRequest, parse_charge
from grid.wire import iso_from_ms, new_session_id, substation_of

BAD_BODIES = [
    ({}, "vehicle_id"),
    ({"vehicle_id": ""}, "vehicle_id"),
    ({"vehicle_id": "   "}, "vehicle_id"),
    ({"vehicle_id": 42}, "vehicle_id"),
    ({"vehicle_id": None}, "vehicle_id"),
    ({"vehicle_id": "x" * 65}, "64"),
    ({"vehicle_id": "EV\n1"}, "control"),
    ({"vehicle_id": "EV", "power_kw": "7.4"}, "number"),
    ({"vehicle_id": "EV", "power_kw": True}, "number"),
    ({"vehicle_id": "EV", "power_kw": [7]}, "number"),
    ({"vehicle_id": "EV", "power_kw": math.nan}, "finite"),
    ({"vehicle_id": "EV", "power_kw": math.inf}, "finite"),
    ({"vehicle_id": "EV", "power_kw": 0}, "positive"),
    ({"vehicle_id": "EV", "power_kw": -7.4}, "positive"),
    ({"vehicle_id": "EV", "power_kw": 1000.5}, "absurd"),
    ({"vehicle_id": "EV", "power_kw": 0.0001}, "1 W"),
    ({"vehicle_id": "EV", "duration_s": "60"}, "number"),
    ({"vehicle_id": "EV", "duration_s": False}, "number"),
    ({"vehicle_id": "EV", "duration_s": 0}, "positive"),
    ({"vehicle_id": "EV", "duration_s": -1}, "positive"),
    ({"vehicle_id": "EV", "duration_s": 86401}, "absurd"),
    ({"vehicle_id": "EV", "power_kw": 10**400}, "absurd"),
    ({"vehicle_id": "EV", "power_kw": 1e308}, "absurd"),
    ({"vehicle_id": "EV", "min_power_kw": 0}, "positive"),
    ({"vehicle_id": "EV", "min_power_kw": -1.4}, "positive"),
    ({"vehicle_id": "EV", "min_power_kw": math.nan}, "finite"),
    ({"vehicle_id": "EV", "min_power_kw": "1.4"}, "number"),
    ({"vehicle_id": "EV", "power_kw": 7, "min_power_kw": 7.5}, "above power_kw"),
    ({"vehicle_id": "EV", "min_power_kw": 0.0001}, "1 W"),
    ({"vehicle_id": "EV", "energy_kwh": 0}, "positive"),
    ({"vehicle_id": "EV", "energy_kwh": -3}, "positive"),
    ({"vehicle_id": "EV", "energy_kwh": math.inf}, "finite"),
    ({"vehicle_id": "EV", "energy_kwh": 1e6}, "absurd"),
    ({"vehicle_id": "EV", "energy_kwh": {}}, "number"),
    ({"vehicle_id": "EV", "wait": "yes"}, "true or false"),
    ({"vehicle_id": "EV", "wait": 1}, "true or false"),
    ({"vehicle_id": "EV", "allow_reduced": None}, "true or false"),
    ({"vehicle_id": "EV", "powerkw": 7}, "unknown field"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_BODIES)
def test_bad_charge_bodies_are_400(body, mentions):
    with pytest.raises(ApiError) as err:
        parse_charge(body)
    assert err.value.status == 400
    assert mentions in err.value.message


def test_good_charge_bodies_are_normalised():
    assert parse_charge({"vehicle_id": "EV-1"}) == ChargeRequest("EV-1", 7400, None, 1400)
    req = parse_charge({"vehicle_id": "x" * 64, "power_kw": 11, "duration_s": 90.5})
    assert req == ChargeRequest("x" * 64, 11000, 90.5, 1400)
    assert parse_charge({"vehicle_id": "EV", "power_kw": 1}).min_w == 1000  # asks for less
    full = parse_charge({"vehicle_id": "EV", "power_kw": 11, "allow_reduced": False})
    assert full.min_w == full.floor_w == 11000
    target = parse_charge({"vehicle_id": "EV", "energy_kwh": 0.5, "min_power_kw": 3,
                           "wait": True})
    assert (target.energy_wms, target.min_w, target.wait) == (1_800_000_000, 3000, True)
    assert parse_charge({"vehicle_id": "EV", "power_kw": 1000}).power_w == 1_000_000
    assert parse_charge({"vehicle_id": "EV", "power_kw": None}).power_w == 7400


def test_session_ids_carry_their_substation():
    sid = new_session_id("substation2")
    assert substation_of(sid) == "substation2"
    assert new_session_id("substation2") != sid
    for bad in ("", "substation2", "substation2.xyz", "a.b.0123456789abcdef", "../x"):
        assert substation_of(bad) is None
    assert iso_from_ms(1_700_000_000_250) == "2023-11-14T22:13:20.250Z"


def _view(**subs: tuple[bool, int, int]) -> GridView:
    return GridView("least-utilization", 0, 0, [], {
        name: SubstationView(name, healthy, load, 0, cap, 0, 0)
        for name, (healthy, load, cap) in subs.items()})


def test_polled_order_lowest_first_ties_by_name():
    utils = {"a": 0.5, "b": 0.1, "c": 0.5}
    assert by_polled_utilization(["c", "a", "b"], utils) == ["b", "a", "c"]
    assert by_polled_utilization(["c", "a", "d"], utils) == ["d", "a", "c"]  # unknown: idle


def test_p2c_samples_two_distinct_and_puts_the_better_first():
    utils = {"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.3}
    seen_first = set()
    for seed in range(50):
        order = p2c_order(["a", "b", "c", "d"], utils, random.Random(seed))
        assert sorted(order) == ["a", "b", "c", "d"]
        assert utils[order[0]] <= utils[order[1]]
        assert order[2:] == by_polled_utilization(order[2:], utils)
        seen_first.add(order[0])
        assert order == p2c_order(["a", "b", "c", "d"], utils, random.Random(seed))
    assert "a" not in seen_first  # the worst one can never win a pair
    assert seen_first == {"b", "c", "d"}  # but any other can: no herding on the minimum
    assert p2c_order(["a"], utils, random.Random(0)) == ["a"]
    assert p2c_order([], utils, random.Random(0)) == []


def test_round_robin_rotates_over_the_healthy_ones():
    assert rotate(["b", "a", "c"], 0) == ["a", "b", "c"]
    assert rotate(["b", "a", "c"], 4) == ["b", "c", "a"]
    assert rotate([], 7) == []
    firsts = [rotate(["a", "b", "c"], n)[0] for n in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_least_utilization_takes_the_ranking_from_redis():
    view = GridView("least-utilization", 0, 0, ["b", "a"], {})
    assert LeastUtilization().order(view).candidates == ["b", "a"]
    assert LeastUtilization().order(_view()).candidates == []


def test_healthy_filter_of_the_view():
    view = _view(a=(True, 0, 10), b=(False, 0, 10), c=(True, 5, 10))
    assert view.healthy() == ["a", "c"]
    assert view.subs["c"].utilization == 0.5


def test_classify_upstream_answers():
    assert classify("a", 200, {"session_id": "a.0123456789abcdef"}).outcome == ADMITTED
    refused = classify("a", 503, {"error": "no capacity", "retry_after": 12})
    assert (refused.outcome, refused.retry_after_s) == (REFUSED, 12)
    assert classify("a", 503, {"error": "redis unavailable"}).outcome == ERROR
    assert classify("a", 500, None).outcome == ERROR
    assert classify("a", 200, {"no": "id"}).outcome == ERROR


def test_retry_after_is_the_soonest_hint():
    view = GridView("polled", 0, 0, [], {
        "a": SubstationView("a", True, 10, 0, 10, 1, 30),
        "b": SubstationView("b", True, 10, 0, 10, 1, 7),
        "c": SubstationView("c", False, 10, 0, 10, 1, 2),  # unhealthy: its hint doesn't count
    })
    assert retry_after(view, []) == 7
    assert retry_after(view, [Attempt("b", REFUSED, {}, 5)]) == 5
    assert retry_after(view, [Attempt("a", REFUSED, {}, 40), Attempt("b", ERROR)]) == 40
    assert retry_after(GridView("p2c", 0, 0, [], {}), []) == 1


def test_parse_utilization_from_metrics_text():
    text = (
        "# HELP substation_load_watts Sum\n# TYPE substation_load_watts gauge\n"
        'substation_load_watts{substation="s1"} 37000.0\n'
        "# HELP substation_capacity_watts Cap\n# TYPE substation_capacity_watts gauge\n"
        'substation_capacity_watts{substation="s1"} 50000.0\n'
        'http_requests_total{service="substation"} 3.0\n'
    )
    assert parse_utilization(text) == pytest.approx(0.74)
    assert parse_utilization("# nothing here\n") is None
    assert parse_utilization(text.replace("50000.0", "0.0")) is None


def test_parse_substations_setting():
    parsed = parse_substations(["s2=http://h:2/", "s1=http://h:1"])
    assert list(parsed.items()) == [("s1", "http://h:1"), ("s2", "http://h:2")]
    for bad in (["s1"], ["s1=ftp://h"], ["s 1=http://h"], ["s1=http://a", "s1=http://b"], []):
        with pytest.raises(ConfigError):
            parse_substations(bad)
