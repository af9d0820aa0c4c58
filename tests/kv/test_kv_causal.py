"""Causal delivery, conflicts and session guarantees across real nodes."""

from __future__ import annotations

import concurrent.futures as cf

import requests

from common.procs import wait_until
from nodes import vclock
from nodes.client import KVClient, Session, demo_steps
from tests.kv.conftest import ADMIN_TOKEN


def test_seed_scenario_buffers_then_delivers_in_order(kv3) -> None:
    kv3.link(0, 2, delay_ms=2000)
    x = kv3.put(0, "x", "A")
    got = wait_until(lambda: (r := kv3.get(1, "x", context=x["vector_clock"])).ok and r)
    y = kv3.put(1, "y", "B", context=got.json()["vector_clock"])
    assert y["version"] == [1, 1, 0]

    # node3 has y but not x: y must wait in the persisted buffer, visibly.
    def y_buffered():
        st = kv3.state(2)
        return st if [m["key"] for m in st["buffer"]] == ["y"] else None

    st = wait_until(y_buffered, timeout=1.5, message="y in node3's buffer")
    assert st["vector_clock"] == [0, 0, 0] and "y" not in st["store"]
    assert st["buffer"][0]["waiting_for"] == {"0": 1}
    assert kv3.get(2, "y").status_code == 404

    states = kv3.wait_converged(timeout=10)
    assert states[2]["store"] == {"x": "A", "y": "B"}
    log = [e for e in kv3.events(2)]
    assert [e["key"] for e in log] == ["x", "y"]
    assert log[1]["buffered_ms"] > 0 and log[0]["buffered_ms"] == 0


def test_cli_demo_narrates_buffering(kv3) -> None:
    steps = list(demo_steps(kv3.urls, ADMIN_TOKEN, delay_ms=1500, tag="t"))
    titles = [s.title for s in steps]
    assert titles[-2:] == ["node3 buffers y", "node3 delivers x, then y"]
    assert steps[-2].data["buffered"] is True
    assert [e["key"] for e in steps[-1].data["events"]] == ["x", "y"]
    assert kv3.status(0)["links"]["2"]["delay_ms"] == 0  # the demo heals the link


def test_concurrent_writes_same_siblings_and_winner_everywhere(kv3) -> None:
    for src in range(3):
        for dst in range(3):
            if src != dst:
                kv3.link(src, dst, paused=True)
    writes = [kv3.put(i, "k", f"from-{i}") for i in range(3)]
    assert [w["version"] for w in writes] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    for src in range(3):
        for dst in range(3):
            if src != dst:
                kv3.link(src, dst, paused=False)
    kv3.wait_converged()
    answers = [kv3.get(i, "k").json() for i in range(3)]
    assert all(a["siblings"] == answers[0]["siblings"] for a in answers)
    assert len(answers[0]["siblings"]) == 3
    assert {a["value"] for a in answers} == {"from-2"}  # equal sums: highest origin wins
    # A write that has seen all three siblings replaces them everywhere.
    resolved = kv3.put(1, "k", "merged", context=answers[0]["vector_clock"])
    assert resolved["siblings"] == [{"value": "merged", "version": [1, 2, 1], "origin": 1}]
    kv3.wait_converged()
    assert all(kv3.get(i, "k").json()["siblings"] == resolved["siblings"] for i in range(3))


def test_session_guarantees_across_nodes(kv3) -> None:
    kv3.link(0, 1, delay_ms=800)  # node2 hears node1 late
    session = Session()
    at1, at2, at3 = (KVClient(u, session) for u in kv3.urls)
    at1.put("profile", "v1")
    # read-your-writes at another node: node2 waits for the write instead of answering 404
    assert at2.get("profile")["value"] == "v1"
    # writes-follow-reads: the write at node3 is ordered after what the session read
    w = at3.put("profile", "v2")
    assert vclock.compare([1, 0, 0], w["version"]) == "before"
    # monotonic reads: after seeing v2, no node may answer with v1 again
    for client in (at1, at2, at3):
        assert client.get("profile")["value"] == "v2"
    # without the context the lagging node still answers from its own (older) state
    kv3.link(0, 1, delay_ms=0)


def test_context_ahead_of_cluster_times_out_with_503(kv3) -> None:
    resp = requests.get(f"{kv3.urls[0]}/kv/x", params={"context": "0,5,0"}, timeout=10)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["vector_clock"] == [0, 0, 0]


def test_five_nodes_converge_under_concurrent_writes(kv_cluster_factory) -> None:
    kv5 = kv_cluster_factory(5)
    with cf.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda i: kv5.put(i % 5, f"k{i % 7}", i), range(100)))
    states = kv5.wait_converged(timeout=30)
    assert states[0]["vector_clock"] == [20] * 5
    answers = [[kv5.get(n, f"k{j}").json()["siblings"] for j in range(7)] for n in range(5)]
    assert all(a == answers[0] for a in answers)


def test_workers_assign_unique_gap_free_counters(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(3, workers=4)
    with cf.ThreadPoolExecutor(16) as pool:
        versions = list(pool.map(lambda i: cluster.put(0, f"w{i % 5}", i)["version"][0],
                                 range(200)))
    assert sorted(versions) == list(range(1, 201))
    local = [e["version"][0] for e in cluster.events(0)]
    assert local == list(range(1, 201))  # the log holds them in counter order
    states = cluster.wait_converged(timeout=30)
    assert states[1]["vector_clock"] == [200, 0, 0]


def test_cli_keeps_context_in_session_file(kv3, tmp_path) -> None:
    import json
    import subprocess
    import sys

    session = tmp_path / "session.json"
    kv3.link(0, 1, delay_ms=700)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nodes.client", "--nodes", ",".join(kv3.urls),
                               "--session", str(session), *args],
                              capture_output=True, text=True, timeout=30)

    put = cli("--node", kv3.urls[0], "put", "cli-key", '{"n": 1}')
    assert put.returncode == 0, put.stderr
    assert json.loads(session.read_text())["context"] == [1, 0, 0]
    got = cli("--node", kv3.urls[1], "get", "cli-key")  # node2 must wait for the slow write
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["value"] == {"n": 1}
    bad = cli("--node", "http://127.0.0.1:9", "get", "cli-key")
    assert bad.returncode == 1 and "unreachable" in bad.stderr
    watch = cli("watch", "--count", "1")
    assert watch.returncode == 0 and "node3 serving clock=" in watch.stdout
    listed = cli("--node", kv3.urls[0], "list", "--prefix", "cli-")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ['"cli-key" {"n": 1} [1, 0, 0]']


def test_client_pages_through_every_key(kv3) -> None:
    for i in range(7):
        kv3.put(0, f"p{i}", i)
    client = KVClient(kv3.urls[0])
    assert [(it["key"], it["value"]) for it in client.items(limit=2)] == [
        (f"p{i}", i) for i in range(7)]
