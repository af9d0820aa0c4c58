"""The Lua scripts against a real redis-server: admission, retry hints, reservations.
ChargeRequest(vehicle, power_w, duration_s) without min_w is the old rule: full power or refusal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from balancer import keys
from balancer.ranking import RankAndReserve
from balancer.strategies import RESERVING
from grid.keys import substation_keys
from grid.sessions import SessionStore
from grid.validation import ChargeRequest

NAMES = ["a", "b", "c"]


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def test_admission_never_overshoots_under_concurrency(client):
    store = SessionStore(client, "a", 50_000)
    req = ChargeRequest("EV", 7400, 600)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: store.admit(req, 60), range(40)))
    admitted = [r for r in results if r.admitted]
    assert len(admitted) == 6  # floor(50 / 7.4)
    assert all(r.load_w <= 50_000 for r in results)
    snap = store.snapshot(100)
    assert snap.load_w == 6 * 7400 == sum(s.power_w for s in snap.sessions)
    assert snap.counters == {"admitted": 6, "refused": 34, "late": 0, "expired": 0,
                             "charged": 0, "deleted": 0, "abandoned": 0}


def test_retry_after_counts_the_soonest_ending_sessions(client):
    store = SessionStore(client, "a", 50_000)
    assert store.admit(ChargeRequest("long", 20_000, 300), 60).admitted
    assert store.admit(ChargeRequest("short", 20_000, 100), 60).admitted
    # 40 kW used of 50: 20 kW needs the short one gone, 45 kW needs both, 60 kW never fits.
    assert store.admit(ChargeRequest("x", 20_000, 60), 60).retry_after_s in (99, 100)
    assert store.admit(ChargeRequest("x", 30_000, 60), 60).retry_after_s in (99, 100)
    assert store.admit(ChargeRequest("x", 45_000, 60), 60).retry_after_s in (299, 300)
    never = store.admit(ChargeRequest("x", 60_000, 60), 60)
    assert not never.admitted and never.retry_after_s is None
    assert store.admit(ChargeRequest("fits", 10_000, 60), 60).admitted


def test_end_releases_power_once(client):
    store = SessionStore(client, "a", 10_000)
    first = store.admit(ChargeRequest("EV", 10_000, 600), 60)
    assert not store.admit(ChargeRequest("EV2", 1, 600), 60).admitted
    assert store.end(first.session_id)[:2] == (10_000, 0)
    assert store.end(first.session_id) is None
    assert store.admit(ChargeRequest("EV2", 10_000, 600), 60).admitted
    assert store.snapshot().counters["deleted"] == 1


def _stores(client, caps):
    stores = {n: SessionStore(client, n, cap) for n, cap in zip(NAMES, caps, strict=True)}
    for store in stores.values():
        store.snapshot()  # publishes capacity_w, as a starting substation does
    return stores


def test_choose_ranks_by_live_utilisation_and_skips_what_cannot_fit(client):
    stores = _stores(client, [100_000, 50_000, 10_000])
    stores["a"].admit(ChargeRequest("EV", 60_000, 600), 60)  # a at 60 %
    stores["b"].admit(ChargeRequest("EV", 10_000, 600), 60)  # b at 20 %
    decider = RankAndReserve(client, NAMES, RESERVING, RESERVING)
    view = decider.rank_and_reserve(20_000, 20_000)  # c (10 kW) can never take 20 kW
    assert view.ranked == ["b", "a"]
    assert view.subs["c"].retry_after_s == -1
    client.hset(keys.HEALTH, "b", "0")
    assert decider.read().ranked == ["c", "a"]  # a peek ranks for power 0
    # an ejected substation is never ranked
    assert decider.rank_and_reserve(20_000, 20_000).ranked == ["a"]


def test_choose_reserves_so_concurrent_decisions_spread(client):
    _stores(client, [30_000, 30_000, 30_000])
    decider = RankAndReserve(client, NAMES, RESERVING, RESERVING, reservation_ttl_ms=60_000)
    picks = [decider.rank_and_reserve(10_000, 10_000).ranked[0] for _ in range(6)]
    # Nothing was admitted yet: only the reservations tell the decisions apart.
    assert picks == ["a", "b", "c", "a", "b", "c"]
    view = decider.read()
    assert {n: s.reserved_w for n, s in view.subs.items()} == {n: 20_000 for n in NAMES}
    # With every substation's room reserved, one that fits by live load is still offered.
    assert decider.rank_and_reserve(20_000, 20_000).ranked == ["a", "b", "c"]


def test_reservations_are_released_or_expire(client):
    _stores(client, [30_000, 30_000, 30_000])
    decider = RankAndReserve(client, NAMES, RESERVING, RESERVING, reservation_ttl_ms=60_000)
    first = decider.rank_and_reserve(10_000, 10_000)
    assert first.ranked[0] == "a" and first.reservation is not None
    name, member = first.reservation
    assert name == "a"
    client.zrem(substation_keys(name).reserved, member)  # what a's admission does
    assert decider.rank_and_reserve(10_000, 10_000).ranked[0] == "a"
    # A balancer that died mid-request: its reservation is already past its expiry.
    client.delete(substation_keys("a").reserved)
    stale = RankAndReserve(client, NAMES, RESERVING, RESERVING, reservation_ttl_ms=-1)
    assert stale.rank_and_reserve(10_000, 10_000).ranked[0] == "a"
    assert stale.rank_and_reserve(10_000, 10_000).ranked[0] == "a"
    # only the newest is left: the older one was reaped by the next call
    assert client.zcard(substation_keys("a").reserved) == 1


def test_other_strategies_do_not_reserve(client):
    _stores(client, [30_000, 30_000, 30_000])
    client.set(keys.STRATEGY, "polled")
    decider = RankAndReserve(client, NAMES, RESERVING, RESERVING)
    view = decider.rank_and_reserve(10_000, 10_000)
    assert view.strategy == "polled" and view.reservation is None
    assert decider.rank_and_reserve(10_000, 10_000).rr == view.rr + 1
    assert decider.read().rr == view.rr + 1  # peeking doesn't advance round-robin
