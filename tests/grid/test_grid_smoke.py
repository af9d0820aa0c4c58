"""Happy path through the balancer: admitted, visible in both /status views, ended early."""

from __future__ import annotations


def test_charge_status_and_delete_through_balancer(grid):
    resp = grid.charge("EV-42", power_kw=11)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"session_id", "substation", "power_kw", "ends_at", "load_kw",
                         "capacity_kw", "utilization"}
    assert body["substation"] == "substation1"  # all idle: lowest utilisation, ties by name
    assert body["power_kw"] == 11 and body["load_kw"] == 11 and body["capacity_kw"] == 150
    assert body["session_id"].startswith("substation1.")

    status = grid.status()
    assert status["strategy"] == "least-utilization"
    by_name = {s["name"]: s for s in status["substations"]}
    assert by_name["substation1"]["load_kw"] == 11
    assert by_name["substation1"]["active_sessions"] == 1
    assert by_name["substation1"]["routed_total"] == 1
    assert all(s["healthy"] for s in status["substations"])
    decision = status["recent"][0]
    assert decision["vehicle_id"] == "EV-42" and decision["substation"] == "substation1"
    assert decision["outcome"] == "admitted" and decision["strategy"] == "least-utilization"
    assert decision["utilization_before"] == 0 and decision["tried"] == ["substation1"]
    assert abs(decision["utilization_after"] - 11 / 150) < 1e-6
    assert {"time", "reason"} <= set(decision)

    sub = grid.sub_status("substation1")
    assert [s["vehicle_id"] for s in sub["sessions"]] == ["EV-42"]

    ended = grid.http.delete(f"{grid.balancer.url}/sessions/{body['session_id']}", timeout=5)
    assert ended.status_code == 200 and ended.json()["load_kw"] == 0
    again = grid.http.delete(f"{grid.balancer.url}/sessions/{body['session_id']}", timeout=5)
    assert again.status_code == 404 and "error" in again.json()
    unknown = grid.http.delete(f"{grid.balancer.url}/sessions/nowhere.0123456789abcdef",
                               timeout=5)
    assert unknown.status_code == 404
