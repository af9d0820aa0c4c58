"""The panel's smart-charging views (allocation bars, queue) as pure functions."""

from __future__ import annotations

from panel.api import ApiError
from panel.views_grid import allocation_rows, allocation_spec, queue_rows


def test_allocation_rows_list_every_charging_car_with_its_share():
    direct = {
        "substation1": {"sessions": [
            {"session_id": "substation1.aa", "vehicle_id": "EV-1", "power_kw": 11.0,
             "min_power_kw": 1.4, "allocated_kw": 5.5, "energy_kwh": 0.2},
            {"session_id": "substation1.bb", "vehicle_id": "EV-2", "power_kw": 3.7,
             "min_power_kw": 1.4, "allocated_kw": 3.7, "energy_kwh": 0.1}]},
        "substation2": ApiError("substation2", "connection refused"),
        "substation3": {"sessions": []},
    }
    rows = allocation_rows(direct)
    assert [(r["vehicle_id"], r["allocated_kw"], r["share"]) for r in rows] == [
        ("EV-1", 5.5, 0.5), ("EV-2", 3.7, 1.0)]
    spec = allocation_spec(rows)
    assert spec["data"]["values"] == rows
    assert spec["encoding"]["x"]["stack"] == "zero"  # one segment per car, summed per substation


def test_queue_rows_in_order_and_empty_when_the_balancer_is_down():
    status = {"queue": {"length": 3, "waiting": [
        {"session_id": "queue.aa", "position": 1, "vehicle_id": "EV-9", "power_kw": 11,
         "min_power_kw": None, "queued_at": "2026-01-01T00:00:00.000Z"},
        {"session_id": "queue.bb", "position": 2, "vehicle_id": "EV-7", "power_kw": 22,
         "min_power_kw": 11, "queued_at": "2026-01-01T00:00:01.000Z"}]}}
    length, rows = queue_rows(status)
    assert length == 3 and [r["vehicle_id"] for r in rows] == ["EV-9", "EV-7"]
    assert [r["position"] for r in rows] == [1, 2]
    assert queue_rows(ApiError("balancer", "down")) == (0, [])
    assert queue_rows({"strategy": "p2c"}) == (0, [])
