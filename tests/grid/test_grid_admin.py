"""Switching strategy at run time, and each strategy routing real requests."""

from __future__ import annotations

from collections import Counter

from tests.grid.conftest import ADMIN_TOKEN


def _post_strategy(grid, body, token: str | None = ADMIN_TOKEN, **kwargs):
    headers = {"X-Admin-Token": token} if token is not None else {}
    return grid.http.post(grid.balancer.url + "/admin/strategy", json=body, headers=headers,
                          timeout=5, **kwargs)


def test_admin_strategy_needs_the_token_and_a_known_name(grid):
    for token in (None, "", "wrong"):
        resp = _post_strategy(grid, {"strategy": "polled"}, token)
        assert resp.status_code == 401 and "error" in resp.json()
    for body in ({"strategy": "fastest"}, {"strategy": None}, {}, {"strategy": ["polled"]}):
        resp = _post_strategy(grid, body)
        assert resp.status_code == 400, body
        assert resp.json()["valid"] == ["least-utilization", "polled", "p2c", "round-robin"]
    resp = grid.http.post(grid.balancer.url + "/admin/strategy", data="nope", timeout=5,
                          headers={"X-Admin-Token": ADMIN_TOKEN})
    assert resp.status_code == 400
    assert grid.status()["strategy"] == "least-utilization"  # nothing changed

    assert _post_strategy(grid, {"strategy": "round-robin"}).json() == {"strategy": "round-robin"}
    assert grid.status()["strategy"] == "round-robin"


def test_round_robin_rotates_across_workers(grid):
    grid.set_strategy("round-robin")
    picks = [grid.charge(f"EV-{i}", power_kw=1).json()["substation"] for i in range(9)]
    assert Counter(picks) == {"substation1": 3, "substation2": 3, "substation3": 3}
    assert all(a != b for a, b in zip(picks, picks[1:], strict=False))
    recent = grid.status()["recent"]
    assert [d["reason"] for d in recent[:9]] == ["next in rotation"] * 9


def test_p2c_and_polled_route_and_say_why(grid):
    for strategy in ("p2c", "polled"):
        grid.set_strategy(strategy)
        for i in range(6):
            resp = grid.charge(f"EV-{strategy}-{i}", power_kw=1)
            assert resp.status_code == 200, resp.text
        recent = grid.status()["recent"][:6]
        assert {d["strategy"] for d in recent} == {strategy}
        assert all(d["outcome"] == "admitted" for d in recent)
    assert "polled utilisation" in recent[0]["reason"]
    loads = sum(s["load_kw"] for s in grid.status()["substations"])
    assert loads == 12
