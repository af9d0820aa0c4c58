"""Max-min fair allocation: the pure reference (grid/allocation.py) by hypothesis properties,
and the Lua of the admission path (grid/lua/lib.lua) agreeing with it to the watt."""

from __future__ import annotations

import random
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid.allocation import Demand, allocate, share_of_newcomer, tie_key
from grid.scripts import grid_scripts
from grid.sessions import SessionStore
from grid.validation import ChargeRequest


@st.composite
def demands_and_capacity(draw, max_sessions: int = 40):
    n = draw(st.integers(0, max_sessions))
    demands = []
    for _ in range(n):
        low = draw(st.integers(1, 50_000))
        high = draw(st.integers(low, 350_000))
        demands.append(Demand(f"s.{secrets.token_hex(8)}", low, high))
    floor = sum(d.min_w for d in demands)
    capacity = draw(st.integers(floor, max(floor, 1) * 3 + 10_000))
    return demands, capacity


def _check_fair(demands: list[Demand], cap: int, alloc: dict[str, int]) -> None:
    assert set(alloc) == {d.session_id for d in demands}
    for d in demands:
        assert d.min_w <= alloc[d.session_id] <= d.max_w
    total = sum(alloc.values())
    assert total <= cap
    # Work-conserving: all of the capacity is used unless every car has its maximum.
    assert total == min(cap, sum(d.max_w for d in demands))
    # Max-min fair (to the watt of rounding): a car held below its maximum can only gain at
    # the expense of one with as much or less, unless that one is pinned at its minimum.
    for d in demands:
        if alloc[d.session_id] < d.max_w:
            for other in demands:
                if alloc[other.session_id] > alloc[d.session_id] + 1:
                    assert alloc[other.session_id] == other.min_w, (d, other, alloc)


@settings(max_examples=300, deadline=None)
@given(demands_and_capacity())
def test_allocation_is_within_bounds_work_conserving_and_max_min_fair(case):
    demands, cap = case
    _check_fair(demands, cap, allocate(demands, cap))


@settings(max_examples=200, deadline=None)
@given(demands_and_capacity(), st.randoms(use_true_random=False))
def test_arrival_order_is_irrelevant(case, rng):
    demands, cap = case
    shuffled = list(demands)
    rng.shuffle(shuffled)
    assert allocate(shuffled, cap) == allocate(demands, cap)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1400, 22_000), st.integers(0, 20_000))
def test_equal_requests_get_equal_shares(n, power, spare):
    demands = [Demand(f"s.{secrets.token_hex(8)}", 1400 if power > 1400 else power, power)
               for _ in range(n)]
    cap = n * min(1400, power) + spare
    shares = sorted(allocate(demands, cap).values())
    assert shares[-1] - shares[0] <= 1  # equal, but for the odd leftover watt
    assert sum(shares) == min(cap, n * power)


def test_worked_example_from_docs():
    # docs/grid.md: a 22 kW substation; cars asking 11, 7.4, 3.7, 7.4 kW (min 1.4), then
    # two at 11 kW with allow_reduced: false.
    cars = [Demand("a.000000000001aaaa", 1400, 11_000), Demand("b.000000000002aaaa", 1400, 7400)]
    assert allocate(cars, 22_000) == {c.session_id: c.max_w for c in cars}  # 18.4 kW fits
    cars.append(Demand("c.000000000003aaaa", 1400, 3700))
    # 22.1 kW asked: b and c are below the water level, a gets what is left.
    assert allocate(cars, 22_000) == {"a.000000000001aaaa": 10_900, "b.000000000002aaaa": 7400,
                                      "c.000000000003aaaa": 3700}
    cars.append(Demand("d.000000000004aaaa", 1400, 7400))
    # 29.5 kW asked of 22: level 6.15 kW; c keeps 3.7, the rest share 18.3 kW.
    assert allocate(cars, 22_000) == {"a.000000000001aaaa": 6100, "b.000000000002aaaa": 6100,
                                      "c.000000000003aaaa": 3700, "d.000000000004aaaa": 6100}
    full = Demand("e.000000000005aaaa", 11_000, 11_000)  # allow_reduced: false
    assert share_of_newcomer(cars, full, 22_000) == 11_000
    alloc = allocate([*cars, full], 22_000)
    assert alloc["e.000000000005aaaa"] == 11_000
    assert alloc["c.000000000003aaaa"] == alloc["a.000000000001aaaa"] == 2750
    assert share_of_newcomer([*cars, full], Demand("f.0000000000060000", 11_000, 11_000),
                             22_000) == 0  # minimums would not fit: refused


def test_tie_key_uses_the_id_hex_not_the_order():
    assert tie_key("substation1.000000000010ffff") < tie_key("a.000000000011aaaa")
    assert tie_key("malformed")[0] == 0


# --- the Lua path against the reference, on a real redis-server -----------------------------

@pytest.fixture
def client(redis_server):
    return redis_server.client()


ALLOCATE_PROBE = """
local list, cap = {}, tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  list[#list + 1] = {id = ARGV[i], min = tonumber(ARGV[i + 1]), max = tonumber(ARGV[i + 2]),
                     tie = tie_of(ARGV[i])}
end
allocate(list, cap)
local out = {}
for _, s in ipairs(list) do out[#out + 1] = s.id; out[#out + 1] = s.alloc end
return out
"""


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=demands_and_capacity(max_sessions=60))
def test_lua_allocate_agrees_with_the_reference_to_the_watt(client, case):
    demands, cap = case
    head = grid_scripts(client, "admit")["admit"].script.split("\n-- Admit one")[0]
    probe = client.register_script(head + "\n" + ALLOCATE_PROBE)
    args = [cap]
    for d in demands:
        args += [d.session_id, d.min_w, d.max_w]
    raw = probe(keys=[], args=args)
    lua = {raw[i]: int(raw[i + 1]) for i in range(0, len(raw), 2)}
    assert lua == allocate(demands, cap)


@pytest.mark.parametrize("seed", range(8))
def test_admissions_and_ends_in_redis_match_the_reference(client, seed):
    """Random arrivals and departures through admit.lua/end.lua; after each step the stored
    allocations equal the reference's for the sessions left, to the watt."""
    rng = random.Random(seed)
    cap = rng.choice([22_000, 50_000, 100_000, 150_000])
    store = SessionStore(client, f"sub{seed}", cap)
    live: dict[str, Demand] = {}
    for step in range(60):
        if live and rng.random() < 0.3:
            victim = rng.choice(sorted(live))
            assert store.end(victim) is not None
            del live[victim]
        else:
            high = rng.choice([1000, 3700, 7400, 11_000, 22_000, 50_000])
            low = rng.choice([high, min(high, 1400), max(1, high // 3)])
            result = store.admit(ChargeRequest(f"EV-{step}", high, 3600, low), 3600)
            fits = sum(d.min_w for d in live.values()) + low <= cap
            assert result.admitted == fits
            if result.admitted:
                live[result.session_id] = Demand(result.session_id, low, high)
        snap = store.snapshot(1000)
        stored = {s.session_id: s.allocated_w for s in snap.sessions}
        assert stored == allocate(list(live.values()), cap)
        assert snap.load_w == sum(stored.values()) <= cap
    assert snap.over == 0 and snap.peak_w <= cap
