"""Crashes: SIGKILL of a node's process group or of its Redis loses no acknowledged write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from common.procs import wait_until


def _writer(cluster, node: int, prefix: str, stop: threading.Event, acked: list) -> None:
    """Write until stopped; remember every write the node acknowledged."""
    i = 0
    while not stop.is_set():
        try:
            resp = requests.put(f"{cluster.urls[node]}/kv/{prefix}{i % 20}",
                                json={"value": i}, timeout=2)
        except requests.RequestException:
            resp = None
        if resp is not None and resp.status_code == 200:
            acked.append(resp.json()["version"][node])
        i += 1


@contextmanager
def writing(cluster, node: int, prefix: str) -> Iterator[list]:
    """A writer thread for the duration of the block; yields the acknowledged counters."""
    stop, acked = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(cluster, node, prefix, stop, acked))
    writer.start()
    try:
        yield acked
    finally:
        stop.set()
        writer.join()


def _assert_all_acked_everywhere(cluster, node: int, acked: list) -> None:
    states = cluster.wait_converged(timeout=40)
    for st in states:
        assert st["vector_clock"][node] >= max(acked)
    counters = sorted(e["version"][node] for e in cluster.events(1) if e["origin"] == node)
    assert set(acked) <= set(counters)
    assert counters == list(range(1, len(counters) + 1))  # no gaps, no reuse


def test_sigkill_node_right_after_acknowledged_writes(kv3) -> None:
    kv3.link(0, 1, paused=True)  # keep some writes queued in the outbox across the crash
    acked = [kv3.put(0, f"k{i}", i)["version"][0] for i in range(30)]
    kv3.nodes[0].kill()
    assert requests.get(f"{kv3.urls[2]}/health").ok  # the others stay up
    kv3.restart_node(0)
    assert kv3.status(0)["vector_clock"][0] == 30
    assert kv3.status(0)["outbox"]["1"] == 30
    kv3.link(0, 1, paused=False)
    _assert_all_acked_everywhere(kv3, 0, acked)
    assert kv3.put(0, "after", 1)["version"][0] == 31


def test_sigkill_sender_and_receiver_during_replication(kv3) -> None:
    with writing(kv3, 0, "r") as acked:
        wait_until(lambda: len(acked) >= 50, message="writes flowing")
        kv3.nodes[1].kill()  # a receiver dies mid-stream
        wait_until(lambda: len(acked) >= 100, message="more writes")
        kv3.nodes[0].kill()  # then the sender itself
        kv3.restart_node(1)
        kv3.restart_node(0)
        wait_until(lambda: len(acked) >= 150, message="writes after restart")
    _assert_all_acked_everywhere(kv3, 0, acked)


def test_sigkill_redis_loses_no_acknowledged_write(kv3) -> None:
    with writing(kv3, 0, "d") as acked:
        wait_until(lambda: len(acked) >= 80, message="writes flowing")
        kv3.redis[0].kill()  # appendfsync always: every acknowledged write is on disk
        count = len(acked)
        kv3.restart_redis(0)
        wait_until(lambda: len(acked) >= count + 50, timeout=20, message="writes resume")
    assert len(set(acked)) == len(acked)  # no counter was handed out twice
    _assert_all_acked_everywhere(kv3, 0, acked)


def test_sigkill_receiver_redis_during_replication(kv3) -> None:
    with writing(kv3, 0, "e") as acked:
        wait_until(lambda: len(acked) >= 50, message="writes flowing")
        kv3.redis[2].kill()
        wait_until(lambda: len(acked) >= 100, message="writes while node3's Redis is down")
        kv3.restart_redis(2)
    _assert_all_acked_everywhere(kv3, 0, acked)


def test_peer_down_catches_up_from_outboxes(kv3) -> None:
    kv3.nodes[2].kill()
    for i in range(40):
        kv3.put(i % 2, f"p{i}", i)
    for src in (0, 1):
        wait_until(lambda src=src: kv3.status(src)["outbox"]["2"] == 20,
                   message="outbox holds the writes for the dead peer")
    kv3.restart_node(2)
    states = kv3.wait_converged(timeout=30)
    assert states[2]["vector_clock"] == [20, 20, 0]
    assert len(states[2]["store"]) == 40
