"""Vector clocks, written again here on purpose: the checker shares no code with the product."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Clock = tuple[int, ...]


def clock(value: Iterable[int]) -> Clock:
    return tuple(int(x) for x in value)


def leq(a: Sequence[int], b: Sequence[int]) -> bool:
    """a happened before or equals b."""
    return len(a) == len(b) and all(x <= y for x, y in zip(a, b, strict=True))


def lt(a: Sequence[int], b: Sequence[int]) -> bool:
    return leq(a, b) and tuple(a) != tuple(b)


def merge(a: Sequence[int] | None, b: Sequence[int]) -> Clock:
    if a is None:
        return clock(b)
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


def covered(version: Sequence[int], siblings: Iterable[Sequence[int]]) -> bool:
    """Some sibling is `version` or dominates it (it was seen, maybe superseded)."""
    return any(leq(version, s) for s in siblings)
