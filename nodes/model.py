"""A pure-Python model of a cluster with state transfer and recovery, for property tests.

The same rules as the Lua scripts, in readable form: causal delivery (vclock.verdict), sibling
merge, the per-origin index behind clock-delta state transfer (sync_delta.lua / sync_apply.lua),
digest-style repair of versions a clock already covers, and recovery after a wipe (recovery.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodes import vclock
from nodes.config import RECOVERY_SKIP


@dataclass
class ModelNode:
    me: int
    n: int
    vc: list[int] = field(default_factory=list)
    store: dict[str, list[dict]] = field(default_factory=dict)
    idx: list[dict[str, int]] = field(default_factory=list)
    buffer: dict[tuple[int, int], dict] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    floors: dict[int, int] = field(default_factory=dict)  # survives wipes of *other* nodes

    def __post_init__(self) -> None:
        self.wipe()

    def wipe(self) -> None:
        self.vc = vclock.zero(self.n)
        self.store, self.buffer, self.log, self.floors = {}, {}, [], {}
        self.idx = [{} for _ in range(self.n)]

    # -- the delivery rule ---------------------------------------------------------------
    def _apply(self, key: str, sib: dict) -> bool:
        old = self.store.get(key, [])
        if any(s["version"] == sib["version"] for s in old):
            return False
        merged = vclock.merge_siblings(old, sib)
        if merged == old:
            return False
        self.store[key] = merged
        self.idx[sib["origin"]][key] = sib["version"][sib["origin"]]
        return True

    def local_write(self, key: str, value) -> dict:
        self.vc[self.me] += 1
        sib = {"value": value, "version": list(self.vc), "origin": self.me}
        self.store[key] = [sib]
        self.idx[self.me][key] = self.vc[self.me]
        self.log.append({**sib, "key": key})
        return {"vc": list(self.vc), "key": key, "value": value, "origin": self.me}

    def receive(self, m: dict) -> None:
        verdict = vclock.verdict(m["vc"], m["origin"], self.vc)
        if verdict == "wait":
            self.buffer[(m["origin"], m["vc"][m["origin"]])] = m
        elif verdict == "deliver":
            self._deliver(m)
        self._drain()

    def _deliver(self, m: dict) -> None:
        self.vc = vclock.merge(self.vc, m["vc"])
        sib = {"value": m["value"], "version": list(m["vc"]), "origin": m["origin"]}
        self._apply(m["key"], sib)
        self.log.append({**sib, "key": m["key"]})

    def _drain(self) -> None:
        progress = True
        while progress:
            progress = False
            for j in range(self.n):
                m = self.buffer.get((j, self.vc[j] + 1))
                if m and vclock.verdict(m["vc"], j, self.vc) == "deliver":
                    del self.buffer[(j, self.vc[j] + 1)]
                    self._deliver(m)
                    progress = True

    # -- state transfer ------------------------------------------------------------------
    def delta_for(self, peer_vc: list[int]) -> tuple[list[int], dict[str, list[dict]]]:
        keys = {k for j in range(self.n) for k, score in self.idx[j].items()
                if score > peer_vc[j]}
        return list(self.vc), {k: [dict(s) for s in self.store[k]] for k in keys
                               if k in self.store}

    def apply_state(self, peer_vc: list[int] | None, items: dict[str, list[dict]]) -> None:
        """peer_vc given: a delta (a causal cut); None: repair, only versions <= own clock."""
        flat = sorted(((k, s) for k, sibs in items.items() for s in sibs),
                      key=lambda ks: (sum(ks[1]["version"]), ks[0], ks[1]["origin"]))
        for key, sib in flat:
            if peer_vc is None and not vclock.leq(sib["version"], self.vc):
                continue
            if self._apply(key, sib):
                self.log.append({**sib, "key": key})
        if peer_vc is not None:
            self.vc = vclock.merge(self.vc, peer_vc)
        for (j, c) in list(self.buffer):
            if c <= self.vc[j]:
                del self.buffer[(j, c)]
        self._drain()

    def pull(self, peer: ModelNode, repair: bool = False) -> None:
        self.apply_state(*peer.delta_for(self.vc))
        if repair:
            self.apply_state(None, peer.store)

    def recover(self, peers: list[ModelNode]) -> None:
        """After a wipe: learn the highest own entry seen, take the peers' state, skip past."""
        seen = max([max(p.vc[self.me], p.floors.get(self.me, 0)) for p in peers]
                   + [c for p in peers for (j, c) in p.buffer if j == self.me] + [0])
        for p in peers:
            self.pull(p)
        floor = max(self.vc[self.me], seen) + RECOVERY_SKIP
        for p in peers:
            p.floors[self.me] = max(p.floors.get(self.me, 0), floor)
        self.vc[self.me] = floor


def causal_order_respected(log: list[dict]) -> bool:
    """No entry appears after one that it happened before... i.e. never a value before its
    causal predecessors: for i < j, log[j] must not strictly precede log[i]."""
    for i, a in enumerate(log):
        for b in log[i + 1:]:
            if b["version"] != a["version"] and vclock.leq(b["version"], a["version"]):
                return False
    return True
