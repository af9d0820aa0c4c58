"""Vector clocks and the causal delivery rule, as pure functions.

The node applies these rules inside Redis (nodes/lua/*.lua) for atomicity; this module is the
readable reference that the property tests hold the Lua scripts to, and what the API uses to
explain a buffered message. A clock is a list of N non-negative ints; entry i belongs to node i.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Clock = Sequence[int]
Order = Literal["before", "after", "equal", "concurrent"]
Verdict = Literal["deliver", "duplicate", "wait"]


def zero(n: int) -> list[int]:
    return [0] * n


def leq(a: Clock, b: Clock) -> bool:
    """a happened before or equals b: every entry of a is <= the entry of b."""
    return all(x <= y for x, y in zip(a, b, strict=True))


def merge(a: Clock, b: Clock) -> list[int]:
    return [max(x, y) for x, y in zip(a, b, strict=True)]


def compare(a: Clock, b: Clock) -> Order:
    if list(a) == list(b):
        return "equal"
    if leq(a, b):
        return "before"
    if leq(b, a):
        return "after"
    return "concurrent"


def verdict(msg_vc: Clock, origin: int, vc: Clock) -> Verdict:
    """Birman-Schiper-Stephenson: may node with clock `vc` deliver origin's message now?

    The `== vc[origin] + 1` test is what stops a sender's later message overtaking its
    earlier one; `<=` on the other entries waits for everything the sender had seen.
    """
    if msg_vc[origin] <= vc[origin]:
        return "duplicate"
    if msg_vc[origin] == vc[origin] + 1 and all(
        m <= v for k, (m, v) in enumerate(zip(msg_vc, vc, strict=True)) if k != origin
    ):
        return "deliver"
    return "wait"


def missing(msg_vc: Clock, origin: int, vc: Clock) -> dict[int, int]:
    """What a waiting message still needs: {node: how many more of its writes}."""
    need = {k: m - v for k, (m, v) in enumerate(zip(msg_vc, vc, strict=True))
            if k != origin and m > v}
    if msg_vc[origin] > vc[origin] + 1:
        need[origin] = msg_vc[origin] - vc[origin] - 1
    return need


def merge_siblings(siblings: list[dict], new: dict) -> list[dict]:
    """Siblings after delivering `new`: versions it dominates go; it stays unless dominated."""
    kept = [s for s in siblings if not leq(s["version"], new["version"])]
    if not any(leq(new["version"], s["version"]) for s in kept):
        kept.append(new)
    return sorted(kept, key=lambda s: s["origin"])


def winner(siblings: list[dict]) -> dict:
    """The value every node reports for concurrent siblings.

    Rule: the largest sum of version entries (the write that had seen the most history),
    ties broken by the higher origin NODE_ID. Two siblings never share an origin (one
    node's writes are causally ordered), so this is a total order and all nodes agree.
    """
    return max(siblings, key=lambda s: (sum(s["version"]), s["origin"]))
