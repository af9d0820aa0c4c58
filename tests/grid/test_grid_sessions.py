"""Session lifecycle through real Gunicorn substations and balancer: expiry on time, early end
frees capacity at once, refusal with Retry-After, bad input never reaching a substation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.procs import wait_until


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _redis_ms(grid) -> int:
    seconds, micros = grid.redis.client().time()
    return seconds * 1000 + micros // 1000


def test_sessions_expire_on_time(grid):
    url = grid.subs["substation3"].url
    first = grid.charge("EV-short", url=url, power_kw=50, duration_s=1.5, allow_reduced=False)
    assert first.status_code == 200, first.text
    end_ms = _ms(first.json()["ends_at"])
    status = grid.sub_status("substation3")
    assert status["load_kw"] == 50 and status["active_sessions"] == 1
    refused = grid.charge("EV-wait", url=url, power_kw=10, allow_reduced=False)
    assert refused.status_code == 503
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"]) in (1, 2)

    # The admission itself never counts an expired session (nor does the reaper tick).
    admitted = wait_until(lambda: (r := grid.charge("EV-next", url=url, power_kw=50,
                                                    allow_reduced=False))
                          .status_code == 200 and r, timeout=5, interval=0.05,
                          message="admission once the first session ended")
    started_ms = _ms(grid.sub_status("substation3")["sessions"][0]["started_at"])
    assert started_ms >= end_ms  # never while the first one was still on
    assert started_ms - end_ms < 1500  # and promptly after it ended
    assert admitted.json()["load_kw"] == 50
    status = grid.sub_status("substation3")
    assert status["ended"] == {"expired": 1, "charged": 0, "deleted": 0, "abandoned": 0}
    assert [s["vehicle_id"] for s in status["sessions"]] == ["EV-next"]


def test_short_session_disappears_from_every_view(grid):
    resp = grid.charge("EV-1", power_kw=20, duration_s=1)
    assert resp.status_code == 200
    end_ms = _ms(resp.json()["ends_at"])

    def gone():
        loads = {s["name"]: s["load_kw"] for s in grid.status()["substations"]}
        return loads["substation1"] == 0

    wait_until(gone, timeout=5, interval=0.05, message="expiry visible in balancer /status")
    assert _redis_ms(grid) >= end_ms
    assert grid.sub_status("substation1")["load_kw"] == 0
    resp = grid.http.delete(f"{grid.balancer.url}/sessions/{resp.json()['session_id']}",
                            timeout=5)
    assert resp.status_code == 404  # an expired session can't be ended twice


def test_early_end_frees_capacity_at_once(grid):
    url = grid.subs["substation3"].url
    sessions = [grid.charge(f"EV-{i}", url=url, power_kw=25, allow_reduced=False)
                for i in range(2)]
    assert [r.status_code for r in sessions] == [200, 200]
    assert grid.charge("EV-x", url=url, power_kw=25, allow_reduced=False).status_code == 503
    ended = grid.http.delete(f"{grid.balancer.url}/sessions/{sessions[0].json()['session_id']}",
                             timeout=5)
    assert ended.status_code == 200, ended.text
    assert ended.json()["substation"] == "substation3" and ended.json()["load_kw"] == 25
    again = grid.charge("EV-x", url=url, power_kw=25, allow_reduced=False)
    assert again.status_code == 200 and again.json()["load_kw"] == 50


def test_concurrent_admissions_at_one_substation_never_overshoot(grid):
    url = grid.subs["substation3"].url
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: grid.charge(f"EV-{i}", url=url, allow_reduced=False)
                              .status_code, range(40)))
    assert codes.count(200) == 6 and codes.count(503) == 34  # floor(50 / 7.4) = 6
    status = grid.sub_status("substation3")
    assert status["load_kw"] == pytest.approx(44.4)
    assert sum(s["power_kw"] for s in status["sessions"]) == pytest.approx(44.4)


BAD_REQUESTS = [
    ("not json", "text/plain"),
    ("{\"vehicle_id\": ", "application/json"),
    ("[1, 2]", "application/json"),
    ("", "application/json"),
    ("{}", "application/json"),
    ('{"vehicle_id": ""}', "application/json"),
    ('{"vehicle_id": "' + "x" * 65 + '"}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": "fast"}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": -1}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": 0}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": 5000}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": NaN}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": true}', "application/json"),
    ('{"vehicle_id": "EV", "duration_s": "long"}', "application/json"),
    ('{"vehicle_id": "EV", "duration_s": 0}', "application/json"),
    ('{"vehicle_id": "EV", "duration_s": 1e9}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": 1e999}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": 7, "min_power_kw": 8}', "application/json"),
    ('{"vehicle_id": "EV", "min_power_kw": -1}', "application/json"),
    ('{"vehicle_id": "EV", "energy_kwh": Infinity}', "application/json"),
    ('{"vehicle_id": "EV", "energy_kwh": 0}', "application/json"),
    ('{"vehicle_id": "EV", "wait": "true", "power_kw": 400}', "application/json"),
    ('{"vehicle_id": "EV", "allow_reduced": 0}', "application/json"),
    ('{"vehicle_id": "EV", "power": 7}', "application/json"),
    ('{"vehicle_id": "EV", "power_kw": 100000000000000000000000000}', "application/json"),
]


def test_bad_input_is_400_and_reaches_no_substation(grid):
    for target in (grid.balancer.url, grid.subs["substation1"].url):
        for body, ctype in BAD_REQUESTS:
            resp = grid.http.post(target + "/charge", data=body,
                                  headers={"Content-Type": ctype}, timeout=5)
            assert resp.status_code == 400, (target, body, resp.text)
            assert isinstance(resp.json().get("error"), str), body
    huge = grid.http.post(grid.balancer.url + "/charge", data="x" * 10_000, timeout=5)
    assert huge.status_code == 413 and "error" in huge.json()
    status = grid.status()
    assert status["recent"] == [] and status["queue"] == {"length": 0, "waiting": []}
    assert all(s["routed_total"] == 0 and s["load_kw"] == 0 for s in status["substations"])
    for name in grid.subs:
        assert grid.sub_status(name)["admissions"] == {"admitted": 0, "refused": 0, "late": 0}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_match_the_state(grid):
    for i in range(3):
        assert grid.charge(f"EV-{i}", power_kw=10).status_code == 200
    assert grid.charge("EV-big", power_kw=400, allow_reduced=False).status_code == 503
    sub = _samples(grid.http.get(grid.subs["substation1"].url + "/metrics", timeout=5).text)
    label = (("substation", "substation1"),)
    assert sub[("substation_load_watts", label)] == 10_000  # 3 x 10 kW spread: 1 each
    assert sub[("substation_capacity_watts", label)] == 150_000
    assert sub[("substation_active_sessions", label)] == 1
    assert sub[("substation_admissions_total", (("outcome", "admitted"), *label))] == 1
    assert sub[("substation_sessions_ended_total", (("reason", "expired"), *label))] == 0

    bal = _samples(grid.http.get(grid.balancer.url + "/metrics", timeout=5).text)
    for name in grid.subs:
        key = ("balancer_routed_total", (("outcome", "admitted"), ("substation", name)))
        assert bal[key] == 1
        assert bal[("balancer_upstream_healthy", (("substation", name),))] == 1
    decisions = ("balancer_decision_seconds_count", (("strategy", "least-utilization"),))
    assert bal[decisions] == 4  # summed over both workers
    assert bal[("balancer_unroutable_total", ())] == 1
