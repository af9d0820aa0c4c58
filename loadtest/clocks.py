"""Vector-clock checks for the KV user's causal session."""

from __future__ import annotations


def clock_below(clock: object, context: list[int]) -> bool:
    """True when `clock` is not a list of ints pointwise >= `context` (a causality violation)."""
    if not isinstance(clock, list) or len(clock) != len(context):
        return True
    return any(type(c) is not int or c < want for c, want in zip(clock, context, strict=True))


def merge_clock(context: list[int], clock: list[int]) -> list[int]:
    """Pointwise max: the session has now observed both."""
    return [max(a, b) for a, b in zip(context, clock, strict=True)]
