"""The KV HTTP API against real nodes: shapes, events, links, and the bad-input table."""

from __future__ import annotations

import json

import pytest
import requests

from common.procs import wait_until
from tests.kv.conftest import ADMIN, CLUSTER_TOKEN


def test_put_get_shapes_and_replication(kv3) -> None:
    put = kv3.put(0, "colour", {"rgb": [1, 2, 3], "empty": [], "obj": {}})
    assert put["version"] == [1, 0, 0] == put["vector_clock"]
    assert put["siblings"] == [{"value": put["value"], "version": [1, 0, 0], "origin": 0}]
    assert put["value"] == {"rgb": [1, 2, 3], "empty": [], "obj": {}}  # JSON survives exactly
    for i in (1, 2):
        resp = wait_until(lambda i=i: (r := kv3.get(i, "colour")).status_code == 200 and r,
                          message=f"colour at node{i + 1}")
        assert resp.json()["value"] == put["value"]
        assert resp.json()["version"] == [1, 0, 0]
    missing = kv3.get(1, "nope")
    assert missing.status_code == 404
    assert missing.json()["key"] == "nope" and "vector_clock" in missing.json()


def test_key_with_slash_and_unicode(kv3) -> None:
    kv3.put(0, "a/b/ключ", 1)
    assert kv3.get(0, "a/b/ключ").json()["value"] == 1


def test_status_and_events_log(kv3) -> None:
    for i in range(5):
        kv3.put(0, f"k{i}", i)
    kv3.wait_converged()
    events = kv3.events(1)
    assert [e["key"] for e in events] == [f"k{i}" for i in range(5)]
    assert {e["kind"] for e in events} == {"replicated"}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    local = kv3.events(0)
    assert {e["kind"] for e in local} == {"local"}
    page = requests.get(f"{kv3.urls[1]}/events", params={"since": 2, "limit": 2}).json()
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["next"] == 4
    status = kv3.state(1)
    assert status["store"] == {f"k{i}": i for i in range(5)}
    assert status["vector_clock"] == [5, 0, 0]
    assert set(status["outbox"]) == {"0", "2"}


def test_links_admin_requires_token_and_pauses(kv3) -> None:
    url = f"{kv3.urls[0]}/admin/links"
    assert requests.post(url, json={"peer": 1, "paused": True}).status_code == 401
    assert requests.post(url, json={"peer": 1, "paused": True},
                         headers={"X-Admin-Token": "wrong"}).status_code == 401
    assert requests.get(url).status_code == 401
    kv3.link(0, 1, paused=True)
    assert requests.get(url, headers=ADMIN).json()["links"]["1"]["paused"] is True
    kv3.put(0, "held", "v")
    wait_until(lambda: kv3.get(2, "held").status_code == 200, message="node3 has it")
    assert kv3.status(0)["outbox"]["1"] == 1
    assert kv3.get(1, "held").status_code == 404
    kv3.link(0, 1, paused=False)
    wait_until(lambda: kv3.get(1, "held").status_code == 200, message="node2 after unpause")
    assert kv3.status(0)["outbox"]["1"] == 0


def _state(kv3) -> list:
    return [(s["vector_clock"], s["store"], s["buffer"]) for s in map(kv3.state, range(3))]


BAD_PUTS = [
    ("not json", b"{value: 1", 400),
    ("array body", b"[1, 2]", 400),
    ("missing value", b'{"valu": 1}', 400),
    ("context too short", b'{"value": 1, "context": [0, 0]}', 400),
    ("context negative", b'{"value": 1, "context": [0, -1, 0]}', 400),
    ("context float", b'{"value": 1, "context": [0, 1.5, 0]}', 400),
    ("context bool", b'{"value": 1, "context": [true, 0, 0]}', 400),
    ("context string", b'{"value": 1, "context": "1,0,0"}', 400),
    ("value over 1 MiB", json.dumps({"value": "x" * (1024 * 1024 + 1)}).encode(), 413),
]


@pytest.mark.parametrize("name,body,status", BAD_PUTS, ids=[b[0] for b in BAD_PUTS])
def test_bad_put_changes_nothing(kv3_shared, name, body, status) -> None:
    kv3 = kv3_shared
    kv3.put(0, "existing", "v")
    kv3.wait_converged()
    before = _state(kv3)
    resp = requests.put(f"{kv3.urls[0]}/kv/existing", data=body,
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert isinstance(resp.json()["error"], str) and resp.json()["error"]
    assert _state(kv3) == before


@pytest.mark.parametrize("path,status", [
    ("/kv/", 400), ("/kv/" + "k" * 257, 400), ("/kv/" + "é" * 129, 400),
    ("/kv/x?context=1,0", 400), ("/kv/x?context=a,b,c", 400), ("/kv/x?context=0,-1,0", 400),
    ("/events?since=-1", 400), ("/events?limit=0", 400), ("/events?since=x", 400),
    ("/nowhere", 404),
])
def test_bad_reads_are_json_4xx(kv3_shared, path, status) -> None:
    kv3 = kv3_shared
    resp = requests.get(kv3.urls[0] + path)
    assert resp.status_code == status
    assert "error" in resp.json()


def test_put_key_too_long(kv3) -> None:
    resp = requests.put(f"{kv3.urls[0]}/kv/{'k' * 257}", json={"value": 1})
    assert resp.status_code == 400 and "256" in resp.json()["error"]
    assert kv3.status(0)["vector_clock"] == [0, 0, 0]


def _replicate(url: str, body, token: str | None = CLUSTER_TOKEN) -> requests.Response:
    headers = {"X-Cluster-Token": token} if token is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}/replicate", data=data, headers=headers)


GOOD_MSG = {"vc": [1, 0, 0], "key": "r", "value": "v"}
BAD_REPLICATIONS = [
    ("no token", {"from": 0, "messages": [GOOD_MSG]}, None, 401),
    ("wrong token", {"from": 0, "messages": [GOOD_MSG]}, "guess", 401),
    ("unknown origin", {"from": 7, "messages": [GOOD_MSG]}, CLUSTER_TOKEN, 400),
    ("origin is self", {"from": 1, "messages": [GOOD_MSG]}, CLUSTER_TOKEN, 400),
    ("clock too long", {"from": 0, "messages": [{**GOOD_MSG, "vc": [1, 0, 0, 0]}]},
     CLUSTER_TOKEN, 400),
    ("clock negative", {"from": 0, "messages": [{**GOOD_MSG, "vc": [1, -1, 0]}]},
     CLUSTER_TOKEN, 400),
    ("clock not list", {"from": 0, "messages": [{**GOOD_MSG, "vc": "1,0,0"}]},
     CLUSTER_TOKEN, 400),
    ("origin entry zero", {"from": 0, "messages": [{**GOOD_MSG, "vc": [0, 0, 0]}]},
     CLUSTER_TOKEN, 400),
    ("missing value", {"from": 0, "messages": [{"vc": [1, 0, 0], "key": "r"}]},
     CLUSTER_TOKEN, 400),
    ("good then bad", {"from": 0, "messages": [GOOD_MSG, {**GOOD_MSG, "vc": [2, 0]}]},
     CLUSTER_TOKEN, 400),
    ("empty batch", {"from": 0, "messages": []}, CLUSTER_TOKEN, 400),
    ("not json", b"\x00\x01", CLUSTER_TOKEN, 400),
]


@pytest.mark.parametrize("name,body,token,status", BAD_REPLICATIONS,
                         ids=[b[0] for b in BAD_REPLICATIONS])
def test_bad_replication_changes_nothing(kv3_shared, name, body, token, status) -> None:
    kv3 = kv3_shared
    before = kv3.state(1)
    resp = _replicate(kv3.urls[1], body, token)
    assert resp.status_code == status, resp.text
    assert "error" in resp.json()
    after = kv3.state(1)
    assert (after["vector_clock"], after["store"], after["buffer"]) == \
        (before["vector_clock"], before["store"], before["buffer"])


def test_replicate_with_token_applies_once(kv3) -> None:
    body = {"from": 0, "messages": [GOOD_MSG]}
    first = _replicate(kv3.urls[1], body)
    assert first.status_code == 200 and first.json()["delivered"] == 1
    again = _replicate(kv3.urls[1], body)
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert [e["key"] for e in kv3.events(1)] == ["r"]


def test_health_and_metrics(kv3) -> None:
    assert requests.get(f"{kv3.urls[0]}/health").json()["status"] == "ok"
    for i in range(10):
        kv3.put(0, f"m{i}", i)
    kv3.wait_converged()
    text = requests.get(f"{kv3.urls[1]}/metrics").text
    assert 'kv_vector_clock{entry="0"} 10.0' in text
    assert 'kv_deliveries_total{kind="replicated",origin="0"} 10.0' in text
    # Counts from both workers are summed: node1's PUT counter sees all ten requests.
    text0 = requests.get(f"{kv3.urls[0]}/metrics").text
    assert ('http_requests_total{method="PUT",route="/kv/<path:key>",service="node",'
            'status="200"} 10.0') in text0


def test_health_503_when_redis_down(kv3) -> None:
    kv3.redis[2].kill()
    resp = requests.get(f"{kv3.urls[2]}/health")
    assert resp.status_code == 503 and "redis" in resp.json()["error"]
    put = requests.put(f"{kv3.urls[2]}/kv/x", json={"value": 1})
    assert put.status_code == 503 and "error" in put.json()
