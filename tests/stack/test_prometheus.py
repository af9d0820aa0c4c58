"""A real Prometheus scrapes the running stack: every target is up, the alert rules load, and
every query of every Grafana panel returns data once there has been some traffic."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
import requests

from common.procs import wait_until
from stack.services import JOBS

from .observability import concrete, panel_queries

TIMEOUT = 5
pytestmark = pytest.mark.tool("prometheus", "the dashboards' queries are checked against a real "
                                            "Prometheus")


@pytest.fixture(scope="module")
def prom(stack) -> Iterator:
    """The session stack with Prometheus (scrape interval 1 s) started beside it."""
    panel = stack.procs.get("panel")
    if panel is None or not panel.running:  # every scraped target must be up, the panel too
        stack.start_service("panel")
    stack.start_service("prometheus")
    try:
        yield stack
    finally:
        stack.stop_service("prometheus")


def api(stack, path: str, **params) -> dict:
    resp = requests.get(f"{stack.prometheus_url}/api/v1/{path}", params=params, timeout=TIMEOUT)
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success", body
    return body["data"]


def light_traffic(stack, round_: int) -> None:
    """A write on every node and a routed charge that ends by itself in 2 s."""
    for i, url in enumerate(stack.node_urls):
        resp = requests.put(f"{url}/kv/obs-{i}", json={"value": round_}, timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
    resp = requests.post(f"{stack.urls['balancer']}/charge", timeout=TIMEOUT,
                         json={"vehicle_id": f"EV-obs-{round_}", "power_kw": 3.7,
                               "duration_s": 2})
    assert resp.status_code == 200, resp.text


def refusal(stack) -> None:
    """Full power (the old rule) above any substation's capacity: each refuses, 503."""
    resp = requests.post(f"{stack.urls['balancer']}/charge", timeout=TIMEOUT,
                         json={"vehicle_id": "EV-too-big", "power_kw": 500,
                               "allow_reduced": False})
    assert resp.status_code == 503, resp.text


def buffered_delivery(stack) -> None:
    """node1's link to node3 is delayed, so node2's dependent write waits in node3's buffer."""
    node1, node2, node3 = stack.node_urls
    admin = {"X-Admin-Token": stack.admin_token}
    links = f"{node1}/admin/links"
    resp = requests.post(links, json={"peer": 2, "delay_ms": 1500}, headers=admin,
                         timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    try:
        requests.put(f"{node1}/kv/obs-cause", json={"value": "a"}, timeout=TIMEOUT)
        wait_until(lambda: requests.get(f"{node2}/kv/obs-cause", timeout=TIMEOUT).ok,
                   timeout=10, message="node2 receives node1's write")
        requests.put(f"{node2}/kv/obs-effect", json={"value": "b"}, timeout=TIMEOUT)
        wait_until(lambda: requests.get(f"{node3}/kv/obs-effect", timeout=TIMEOUT).ok,
                   timeout=15, message="node3 delivers the buffered write")
    finally:
        requests.post(links, json={"peer": 2, "delay_ms": 0}, headers=admin, timeout=TIMEOUT)


def has_finite_sample(result: list[dict]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_prometheus_scrapes_every_service_and_loads_the_rules(prom):
    expected = {member for _, members in JOBS for member in members}

    def all_up():
        targets = api(prom, "targets")["activeTargets"]
        return {t["labels"]["instance"] for t in targets if t["health"] == "up"} == expected

    wait_until(all_up, timeout=30, interval=0.5, message="every scrape target up")
    groups = {group["name"] for group in api(prom, "rules")["groups"]}
    assert groups == {"grid", "kv", "targets"}


def test_every_dashboard_query_returns_data_after_traffic(prom):
    wait_until(lambda: api(prom, "query", query="up")["result"], timeout=30, interval=0.5,
               message="first scrapes")
    queries = {(name, title, concrete(expr)) for name, title, expr in panel_queries()}
    light_traffic(prom, 0)  # creates labelled series; later rounds make their rates non-zero
    scraped = "kv_replication_latency_seconds_count and on() balancer_decision_seconds_count"
    wait_until(lambda: api(prom, "query", query=scraped)["result"], timeout=30, interval=0.5,
               message="the first labelled histograms scraped")
    refusal(prom)
    buffered_delivery(prom)
    pending = set(queries)
    deadline = time.monotonic() + 60
    round_ = 1
    while pending and time.monotonic() < deadline:
        light_traffic(prom, round_)
        round_ += 1
        pending = {q for q in pending
                   if not has_finite_sample(api(prom, "query", query=q[2])["result"])}
        if pending:
            time.sleep(1)
    assert not pending, "panels without data:\n" + "\n".join(
        f"  {name} / {title}: {expr}" for name, title, expr in sorted(pending))
