"""Anti-entropy and bounded memory: differences no replication message will ever fix are repaired
by the periodic exchange, whose cost between agreeing stores is a constant-size digest."""

from __future__ import annotations

import json

import requests

from common.procs import wait_until
from nodes.config import NodeConfig
from nodes.store import NodeStore, outbox_key
from tests.kv.conftest import CLUSTER_TOKEN

FAST_AE = {"ANTI_ENTROPY_S": "0.5", "DIGEST_REBUILD_S": "0"}


def _sync_events(kv, i: int) -> list[dict]:
    return [e for e in kv.events(i) if e.get("sync")]


def test_keys_deleted_by_hand_come_back_without_write_traffic(kv_cluster_factory) -> None:
    kv3 = kv_cluster_factory(3, env=FAST_AE)
    for i in range(30):
        kv3.put(i % 3, f"h{i}", {"n": i})
    before = kv3.wait_converged()[1]
    last_seq = kv3.events(1)[-1]["seq"]
    r = kv3.redis[1].client()
    r.hdel("kv:store", "h0", "h1", "h2", "h3", "h4")
    assert kv3.status(1)["keys"] == 25
    wait_until(lambda: kv3.items(1) == before["store"], timeout=20, message="keys repaired")
    after = kv3.wait_converged()
    assert after[1]["vector_clock"] == before["vector_clock"]  # no write was made
    repaired = {e["key"] for e in _sync_events(kv3, 1) if e["seq"] > last_seq}
    assert repaired == {"h0", "h1", "h2", "h3", "h4"}  # each logged once, as a state transfer
    sync = kv3.status(1)["sync"]
    assert all(s["result"] == "ok" and s["last_exchange_ms"] for s in sync.values())
    metrics = requests.get(f"{kv3.urls[1]}/metrics").text
    assert "kv_sync_exchanges_total" in metrics and "kv_sync_repaired_keys_total" in metrics


def test_outbox_dropped_by_hand_is_repaired_by_the_next_round(kv_cluster_factory) -> None:
    kv3 = kv_cluster_factory(3, env=FAST_AE)
    kv3.link(0, 1, paused=True)  # also stops anti-entropy from node1 to node2
    for i in range(20):
        kv3.put(0, f"o{i}", i)
    wait_until(lambda: kv3.status(0)["outbox"]["1"] == 20, message="queued for node2")
    kv3.redis[0].client().delete(outbox_key(1))
    kv3.link(0, 1, paused=False)
    states = kv3.wait_converged(timeout=20)
    assert states[1]["store"] == {f"o{i}": i for i in range(20)}
    assert states[1]["vector_clock"] == [20, 0, 0]
    # Every key arrived by state transfer, from node1 or from node3, never out of causal order.
    assert {e["key"] for e in kv3.events(1)} == {f"o{i}" for i in range(20)}


def test_digest_exchange_between_agreeing_10k_key_stores_is_under_4_kib(kv3) -> None:
    cfg = NodeConfig(node_id=0, node_urls=tuple(kv3.urls), redis_url=kv3.redis[0].url,
                     cluster_token=CLUSTER_TOKEN, admin_token="x", start_senders=False)
    store = NodeStore(cfg)
    for start in range(0, 10_000, 1000):  # pipelined local writes: fast to load
        pipe = store.redis.pipeline(transaction=False)
        for i in range(start, start + 1000):
            store.scripts["local_write"](
                keys=[outbox_key(1), outbox_key(2)],
                args=[3, 0, f"d{i:05d}", json.dumps(i), cfg.log_max, json.dumps(i),
                      cfg.outbox_max, 1, "kv:wake:1", 2, "kv:wake:2"], client=pipe)
        pipe.execute()
    wait_until(lambda: all(kv3.status(i)["vector_clock"] == [10_000, 0, 0] for i in range(3)),
               timeout=60, message="10k keys replicated")
    result = kv3.admin_sync(1)["sync"]
    for peer in ("0", "2"):
        exchange = result[peer]
        assert exchange["result"] == "ok" and exchange["keys_repaired"] == 0
        assert exchange["bytes_sent"] + exchange["bytes_received"] < 4096, exchange
    # One changed key costs bytes for that key, not for the store.
    kv3.redis[1].client().hdel("kv:store", "d00042")
    repair = kv3.admin_sync(1, rebuild=True)
    assert repair["digest_fixed"] == 1
    assert sum(s["keys_repaired"] for s in repair["sync"].values()) >= 1
    assert all(s["bytes_received"] < 20_000 for s in repair["sync"].values()), repair
    assert kv3.get(1, "d00042").json()["value"] == 42


def test_outbox_bound_drops_and_state_transfer_catches_up(kv_cluster_factory) -> None:
    # Anti-entropy rarely: the catch-up must come from the sender's kick.
    kv3 = kv_cluster_factory(3, env={"OUTBOX_MAX": "50", "ANTI_ENTROPY_S": "600"})
    kv3.nodes[2].kill()
    for i in range(200):
        kv3.put(0, f"b{i}", i)
    status = kv3.status(0)
    assert status["outbox"]["2"] <= 50
    assert status["needs_state_transfer"] == [2]
    assert status["limits"]["outbox_max"] == 50
    assert 'kv_limit{name="outbox_max"} 50.0' in requests.get(f"{kv3.urls[0]}/metrics").text
    kv3.restart_node(2)
    states = kv3.wait_converged(timeout=30)
    assert states[2]["store"] == {f"b{i}": i for i in range(200)}
    assert kv3.status(0)["needs_state_transfer"] == []


def test_buffer_bound_accepts_a_prefix_then_refuses(kv_cluster_factory) -> None:
    kv3 = kv_cluster_factory(3, env={"BUFFER_MAX": "20", "ANTI_ENTROPY_S": "600"})
    # Messages 2..41 from node1 (message 1 never sent): none deliverable, all would wait.
    msgs = [{"vc": [c, 0, 0], "key": f"g{c}", "value": c} for c in range(2, 42)]
    headers = {"X-Cluster-Token": CLUSTER_TOKEN}
    first = requests.post(f"{kv3.urls[1]}/replicate", json={"from": 0, "messages": msgs},
                          headers=headers)
    assert first.status_code == 200 and first.json()["acked"] == 21  # 2..21 buffered
    status = kv3.status(1)
    assert status["buffered"] == 20 and status["limits"]["buffer_max"] == 20
    assert len(status["buffer"]) == 20 and status["buffer"][0]["key"] == "g2"
    again = requests.post(f"{kv3.urls[1]}/replicate", json={"from": 0, "messages": msgs[20:]},
                          headers=headers)
    assert again.status_code == 503 and again.headers["Retry-After"]
    assert "buffer full" in again.json()["error"]
    assert kv3.status(1)["buffered"] == 20
    # The gap filled, everything buffered delivers in order.
    fill = requests.post(f"{kv3.urls[1]}/replicate",
                         json={"from": 0, "messages": [{"vc": [1, 0, 0], "key": "g1",
                                                         "value": 1}]}, headers=headers)
    assert fill.status_code == 200 and fill.json()["delivered"] == 21
    assert kv3.status(1)["vector_clock"] == [21, 0, 0]


def test_sync_endpoints_require_the_cluster_token_and_valid_bodies(kv3_shared) -> None:
    url = kv3_shared.urls[0]
    good = {"from": 1, "vc": [0, 0, 0], "top": []}
    assert requests.post(f"{url}/sync/digest", json=good).status_code == 401
    headers = {"X-Cluster-Token": CLUSTER_TOKEN}
    for bad in ({**good, "vc": [0, 0]}, {**good, "top": ["x"] * 64}, {**good, "from": 0},
                {**good, "from": 9}):
        resp = requests.post(f"{url}/sync/digest", json=bad, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]
    for path, body in (("/sync/leaves", {"from": 1, "leaves": ["64:0"]}),
                       ("/sync/hello", {"from": 1, "incarnation": "../x"})):
        resp = requests.post(url + path, json=body, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]
    assert requests.post(f"{url}/admin/sync").status_code == 401
