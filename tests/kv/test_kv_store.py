"""NodeStore against a real redis-server: the log's trimming and paging."""

from __future__ import annotations

from nodes.config import NodeConfig
from nodes.store import NodeStore


def _store(redis_server, log_max: int) -> NodeStore:
    cfg = NodeConfig(node_id=0, node_urls=("http://a", "http://b"), redis_url=redis_server.url,
                     cluster_token="t", admin_token="t", log_max=log_max, start_senders=False)
    store = NodeStore(cfg)
    # Alone, with no peer to ask: verify the (empty) Redis directly so writes are accepted.
    assert store.meta_finish(store.meta_begin("test")["run_id"], 0)
    return store


def test_events_keep_the_newest_entries_and_page_by_seq(redis_server) -> None:
    store = _store(redis_server, log_max=10)
    for i in range(25):
        store.local_write(f"k{i}", str(i))
    events, nxt = store.events(0, 100)
    assert [e["seq"] for e in events] == list(range(16, 26)) and nxt == 25
    events, nxt = store.events(20, 3)
    assert [e["seq"] for e in events] == [21, 22, 23] and nxt == 23
    assert store.events(25, 10) == ([], 25)
    assert store.events(99, 10) == ([], 99)


def test_outbox_ack_is_by_counter(redis_server) -> None:
    store = _store(redis_server, log_max=10_000)
    for i in range(5):
        store.local_write("k", str(i))
    assert store.ack(1, 3, 0, 0) == 3
    assert store.ack(1, 3, 0, 0) == 0  # a repeated ack drops nothing more
    assert store.ack(1, 2, 0, 0) == 0  # nor does a late, smaller one
    assert store.snapshot()["outbox"] == {"1": 2}
