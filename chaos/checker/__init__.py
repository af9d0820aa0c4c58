"""The chaos checker: reads a history and the final public state, returns a verdict.

It imports nothing from GridClock (nor from the rest of `chaos`): only the standard library
and its own modules, so a bug in the product cannot hide itself in the checker.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos.checker import grid, kv
from chaos.checker.history import pair


def check(history: list[dict[str, Any]], final: dict[str, Any]) -> dict[str, Any]:
    """`{"valid", "violations": [...], "counts": {...}}` for a history and the final state."""
    ops, faults = pair(history)
    kv_violations, kv_counts = kv.check(ops, faults, final)
    grid_violations, grid_counts = grid.check(ops, faults, final)
    violations = kv_violations + grid_violations
    counts: dict[str, Any] = {
        "operations": len(ops),
        "ok": sum(op.type == "ok" for op in ops),
        "fail": sum(op.type == "fail" for op in ops),
        "info": sum(op.type == "info" for op in ops),
        **kv_counts, **grid_counts,
        "faults": dict(Counter(fault.kind for fault in faults)),
        "violations_by_kind": dict(Counter(v["kind"] for v in violations)),
    }
    return {"valid": not violations, "violations": violations, "counts": counts}
