"""Property test of the whole repair design on the pure model (nodes/model.py): random
interleavings of writes, message deliveries, anti-entropy pulls and a node wipe with recovery
always converge, no node ever logs a value before its causal predecessors, and no clock entry is
ever used for two different writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.model import ModelNode, causal_order_respected

N = 3
OPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, N - 1), st.sampled_from("abcd")),
    st.tuples(st.just("deliver"), st.integers(0, N - 1), st.integers(0, N - 1)),
    st.tuples(st.just("pull"), st.integers(0, N - 1), st.integers(0, N - 1)),
    st.tuples(st.just("wipe"), st.integers(0, N - 1), st.just("")),
), max_size=60)


def _run(ops) -> tuple[list[ModelNode], dict, list[list[dict]]]:
    nodes = [ModelNode(i, N) for i in range(N)]
    channels: dict[tuple[int, int], list[dict]] = {(s, d): [] for s in range(N) for d in range(N)
                                                   if s != d}
    writes: dict[tuple[int, int], tuple] = {}  # (origin, counter) -> (key, value): no reuse
    serial = 0
    segments: list[list[dict]] = []  # logs of node lives ended by a wipe
    for op, a, b in ops:
        if op == "write":
            serial += 1
            m = nodes[a].local_write(b, serial)
            assert (a, m["vc"][a]) not in writes, "clock entry reused"
            writes[(a, m["vc"][a])] = (b, serial)
            for d in range(N):
                if d != a:
                    channels[(a, d)].append(m)
        elif op == "deliver" and a != b and channels[(a, b)]:
            nodes[b].receive(channels[(a, b)].pop(0))
        elif op == "pull" and a != b:
            nodes[a].pull(nodes[b])
        elif op == "wipe":
            segments.append(nodes[a].log)  # what it delivered before forgetting counts too
            nodes[a].wipe()
            for d in range(N):
                if d != a:
                    channels[(a, d)] = []  # its outboxes were in the lost Redis
            nodes[a].recover([nodes[p] for p in range(N) if p != a])
    # Heal: drain every channel, then anti-entropy rounds (delta + digest repair) between all.
    for (_src, d), queue in channels.items():
        while queue:
            nodes[d].receive(queue.pop(0))
    for _ in range(2):
        for a in range(N):
            for b in range(N):
                if a != b:
                    nodes[a].pull(nodes[b], repair=True)
    return nodes, writes, segments


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_writes_wipes_and_repair_rounds_converge_in_causal_order(ops) -> None:
    nodes, writes, segments = _run(ops)
    first = nodes[0]
    for node in nodes[1:]:
        assert node.vc == first.vc
        assert node.store == first.store
    for node in nodes:
        assert not node.buffer
    for log in [node.log for node in nodes] + segments:
        assert causal_order_respected(log)
        for e in log:
            c = e["version"][e["origin"]]
            assert writes[(e["origin"], c)] == (e["key"], e["value"])  # never a reused entry
