"""Pure parts of `make chaos`: the seeded schedule, outcome classification, settling, the plot."""

from __future__ import annotations

import requests

from chaos.final import settled
from chaos.nemesis import KINDS, schedule
from chaos.report import plot
from chaos.workload import _outcome

from .histories import History


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another():
    def shape(plan):
        return [(p.at, p.kind, p.params, p.hold) for p in plan]

    assert shape(schedule(7, 120, KINDS)) == shape(schedule(7, 120, KINDS))
    assert shape(schedule(7, 120, KINDS)) != shape(schedule(8, 120, KINDS))
    plan = schedule(7, 120, KINDS)
    assert len(plan) >= 10 and len({p.kind for p in plan}) >= 5
    assert all(p.at >= 3.0 and p.at + p.hold <= 118 for p in plan)
    assert all(b.at >= a.at + a.hold + 1.0 for a, b in zip(plan, plan[1:], strict=False))


def test_a_kind_may_name_its_target_and_no_kind_means_no_fault():
    plan = schedule(1, 60, ("kill=redis-grid", "pause=node2"))
    assert plan and all(p.params in ({"target": "redis-grid"}, {"target": "node2"})
                        for p in plan)
    assert schedule(1, 60, ()) == []


def test_only_requests_that_never_reached_the_server_count_as_failed():
    refused = requests.ConnectionError("HTTPConnectionPool: Failed to establish a new "
                                       "connection: [Errno 111] Connection refused")
    assert _outcome(refused)[0] == "fail"
    assert _outcome(requests.ConnectTimeout("connect timed out"))[0] == "fail"
    assert _outcome(requests.ReadTimeout("read timed out"))[0] == "info"
    cut = requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end "
                                   "closed connection without response'))")
    assert _outcome(cut)[0] == "info"


def test_settled_needs_one_clock_and_nothing_pending_everywhere():
    ok = {"vector_clock": [2, 1, 0], "buffer": [], "outbox": {"1": 0, "2": 0}}
    assert settled({"a": ok, "b": dict(ok)})
    assert not settled({"a": ok, "b": {**ok, "vector_clock": [2, 0, 0]}})
    assert not settled({"a": ok, "b": {**ok, "outbox": {"1": 3}}})
    assert not settled({"a": ok, "b": {**ok, "buffered": 2}})
    assert not settled({"a": ok, "b": {**ok, "state": "recovering"}})
    assert not settled({"a": ok, "b": {"error": "refused"}})


def test_the_timeline_is_a_png_with_fault_bands(tmp_path):
    h = History()
    h.put("kv0", 0, "a", "kv0-1", [1, 0, 0])
    h.fault(1, "kill", 0.5, 1.5, target="node2")
    h.at(2.0).charge("ev0", 11.0, "substation1", ends_in=3)
    h.op("kv1", "put", {"node": 1, "key": "a", "value": "kv1-1"}, "info", {"error": "timeout"})
    path = tmp_path / "timeline.png"
    plot(h.entries, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
