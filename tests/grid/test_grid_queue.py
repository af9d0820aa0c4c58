"""The queue of cars that wait: FIFO under concurrency across two balancer processes, admitted
within a second of room appearing, surviving a balancer restart, cancellable."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from common.procs import wait_until

ONE_SUB = {"substation1": 11.0}
FULL = {"power_kw": 11, "allow_reduced": False}  # exactly one car at a time fits


def _state(grid, sid: str, url: str | None = None) -> dict:
    resp = grid.http.get(f"{url or grid.balancer.url}/sessions/{sid}", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _end(grid, sid: str) -> None:
    resp = grid.http.delete(f"{grid.balancer.url}/sessions/{sid}", timeout=5)
    assert resp.status_code == 200, resp.text


def test_queue_is_fifo_across_balancers_and_admits_within_a_second(grid_factory):
    grid = grid_factory(capacities=ONE_SUB, n_balancers=2)
    first = grid.charge("EV-first", **FULL)
    assert first.status_code == 200
    urls = [b.url for b in grid.balancers]
    with ThreadPoolExecutor(8) as pool:
        queued = list(pool.map(lambda i: grid.charge(f"EV-q{i}", url=urls[i % 2], wait=True,
                                                     **FULL), range(8)))
    assert [r.status_code for r in queued] == [202] * 8, [r.text for r in queued]
    bodies = sorted((r.json() for r in queued), key=lambda b: b["position"])
    assert [b["position"] for b in bodies] == list(range(1, 9))
    assert all(b["state"] == "queued" and b["session_id"].startswith("queue.") for b in bodies)
    # A car that asks to wait while others wait joins the end, even if room appeared.
    assert grid.status()["queue"]["length"] == 8

    holder = first.json()["session_id"]
    for i, body in enumerate(bodies):
        _end(grid, holder)
        freed = time.monotonic()
        state = wait_until(lambda b=body: (s := _state(grid, b["session_id"]))["state"]
                           == "charging" and s, timeout=5, interval=0.02,
                           message=f"queued car {i} admitted")
        waited = time.monotonic() - freed
        assert waited < 1.0, waited
        assert state["substation"] == "substation1" and state["allocated_kw"] == 11
        # Everyone behind it is still waiting, one place further up.
        for j, later in enumerate(bodies[i + 1:], start=1):
            assert _state(grid, later["session_id"], urls[j % 2]) == {
                "session_id": later["session_id"], "state": "queued", "position": j,
                "allocated_kw": 0.0, "energy_kwh": 0.0, "substation": None}
        holder = state["session_id"]
    assert grid.status()["queue"]["length"] == 0
    decisions = [d for d in grid.status()["recent"] if d["outcome"] == "queued"]
    assert len(decisions) == 8


def test_queue_survives_a_balancer_restart_and_cancel_works(grid_factory):
    grid = grid_factory(capacities=ONE_SUB)
    holder = grid.charge("EV-first", **FULL).json()["session_id"]
    waiting = [grid.charge(f"EV-w{i}", wait=True, **FULL).json() for i in range(3)]
    assert [w["position"] for w in waiting] == [1, 2, 3]
    cancelled = grid.http.delete(f"{grid.balancer.url}/sessions/{waiting[0]['session_id']}",
                                 timeout=5)
    assert cancelled.status_code == 200 and cancelled.json()["reason"] == "cancelled"
    assert _state(grid, waiting[0]["session_id"])["state"] == "ended"
    assert _state(grid, waiting[1]["session_id"])["position"] == 1

    grid.balancer.kill()  # a crash: its dispatcher lease lapses on its own
    grid.balancer.start()
    _end(grid, holder)
    state = wait_until(lambda: (s := _state(grid, waiting[1]["session_id"]))["state"]
                       == "charging" and s, timeout=10, interval=0.05,
                       message="queued car admitted after the restart")
    assert state["substation"] == "substation1"
    assert _state(grid, waiting[2]["session_id"])["position"] == 1
    again = grid.http.delete(f"{grid.balancer.url}/sessions/{waiting[0]['session_id']}",
                             timeout=5)
    assert again.status_code == 404  # cancelled once
    # Ending an admitted queued car by its queue id reaches its substation.
    _end(grid, waiting[1]["session_id"])
    assert _state(grid, waiting[1]["session_id"])["state"] == "ended"
    wait_until(lambda: _state(grid, waiting[2]["session_id"])["state"] == "charging",
               timeout=5, interval=0.05, message="last car admitted")


def test_a_car_that_does_not_wait_or_never_fits_is_refused_not_queued(grid_factory):
    grid = grid_factory(capacities=ONE_SUB)
    assert grid.charge("EV-first", **FULL).status_code == 200
    resp = grid.charge("EV-impatient", **FULL)
    assert resp.status_code == 503 and "Retry-After" in resp.headers
    # Waiting can't help a car whose minimum is above every capacity: it would block the queue.
    never = grid.charge("EV-huge", power_kw=12, allow_reduced=False, wait=True)
    assert never.status_code == 503, never.text
    assert grid.status()["queue"]["length"] == 0
