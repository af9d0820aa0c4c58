"""No session a car never hears about: a substation that answers after the balancer's per-try
deadline (a real Gunicorn substation slowed by its test-only delay settings) leaves no second
or unknown session; the car gets exactly one, from the next substation."""

from __future__ import annotations

from common.procs import wait_until
from grid.keys import substation_keys

TIMEOUT_S = "0.5"


def _sessions(grid) -> dict[str, list[str]]:
    client = grid.redis.client()
    return {name: client.zrange(substation_keys(name).sessions, 0, -1) for name in grid.subs}


def _check_one_session(grid, resp) -> str:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["substation"] == "substation2"  # substation1 ranks first but was too slow
    sid = body["session_id"]
    rid = sid.split(".", 1)[1]
    slow_id = f"substation1.{rid}"
    ended = grid.redis.client().hget(substation_keys("substation1").ended, slow_id)
    assert ended is not None and ":abandoned:" in ended  # given up, and barred for good
    return slow_id


def test_admission_just_before_the_deadline_but_answered_after_it_is_ended(grid_factory):
    # substation1 admits at once but answers 1.2 s later: the try times out after 0.5 s.
    grid = grid_factory(UPSTREAM_TIMEOUT_S=TIMEOUT_S, EJECT_AFTER="10",
                        substation_env={"substation1": {"TEST_REPLY_DELAY_S": "1.2"}})
    resp = grid.charge("EV-late", power_kw=11)
    slow_id = _check_one_session(grid, resp)
    # Whatever substation1 says when its answer finally comes, it holds nothing.
    wait_until(lambda: grid.sub_status("substation1")["admissions"]["admitted"] == 1,
               timeout=5, message="substation1's slow admission")
    assert _sessions(grid) == {"substation1": [], "substation2": [resp.json()["session_id"]],
                               "substation3": []}
    state = grid.http.get(f"{grid.subs['substation1'].url}/sessions/{slow_id}", timeout=5)
    assert state.json()["state"] == "ended" and state.json()["reason"] == "abandoned"
    assert grid.sub_status("substation1")["ended"]["abandoned"] == 1


def test_admission_after_the_deadline_is_refused_by_the_script(grid_factory):
    # substation1 gets to the admission only after the deadline: admit.lua drops it.
    grid = grid_factory(UPSTREAM_TIMEOUT_S=TIMEOUT_S, EJECT_AFTER="10",
                        substation_env={"substation1": {"TEST_ADMIT_DELAY_S": "0.8"}})
    resp = grid.charge("EV-late", power_kw=11)
    _check_one_session(grid, resp)
    wait_until(lambda: grid.sub_status("substation1")["admissions"]["late"] == 1,
               timeout=5, message="substation1's late admission refused")
    assert grid.sub_status("substation1")["admissions"]["admitted"] == 0
    assert _sessions(grid)["substation1"] == []
    assert sum(len(v) for v in _sessions(grid).values()) == 1
