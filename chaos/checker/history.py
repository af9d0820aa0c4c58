"""A recorded history: invocations and completions, paired per process (Jepsen's model).

Each line is `{"index", "time", "process", "type", "f", "value"}` with `type` one of invoke, ok,
fail (it did not happen), info (unknown: it may or may not have happened). A process does one
operation at a time, so its next completion belongs to its last invocation. Nemesis lines are
`type: "info"` with `f` "fault" or "heal".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Op:
    """One operation: its invocation and its completion (None if the history ends first)."""

    process: str
    f: str
    invoke: dict[str, Any]
    complete: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.invoke["index"]

    @property
    def type(self) -> str:
        return self.complete["type"] if self.complete else "info"

    @property
    def start(self) -> float:
        return self.invoke["time"]

    @property
    def end(self) -> float:
        return self.complete["time"] if self.complete else float("inf")

    @property
    def args(self) -> dict[str, Any]:
        return self.invoke.get("value") or {}

    @property
    def result(self) -> dict[str, Any]:
        return (self.complete or {}).get("value") or {}

    def ref(self) -> dict[str, Any]:
        """How a violation names this operation."""
        out = {"index": self.index, "process": self.process, "f": self.f, "type": self.type,
               "time": round(self.start, 3)}
        for key in ("node", "key", "value", "session_id", "vehicle_id"):
            if key in self.args:
                out[key] = self.args[key]
        return out


@dataclass
class Fault:
    id: int
    kind: str
    start: float
    end: float
    value: dict[str, Any]

    @property
    def hosts(self) -> list[str]:
        return list(self.value.get("hosts", []))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def pair(history: list[dict[str, Any]]) -> tuple[list[Op], list[Fault]]:
    """Client operations (in invocation order) and nemesis faults (heal time inf if never)."""
    ops: list[Op] = []
    open_: dict[str, Op] = {}
    faults: dict[int, Fault] = {}
    for entry in history:
        if entry["process"] == "nemesis":
            value = entry.get("value") or {}
            if entry["f"] == "fault":
                faults[value["id"]] = Fault(value["id"], value["kind"], entry["time"],
                                            float("inf"), value)
            elif entry["f"] == "heal" and value.get("id") in faults:
                faults[value["id"]].end = entry["time"]
            continue
        if entry["type"] == "invoke":
            op = Op(entry["process"], entry["f"], entry)
            open_[entry["process"]] = op
            ops.append(op)
        else:
            op = open_.pop(entry["process"], None)
            if op is None:
                raise ValueError(f"completion without invocation: {entry}")
            op.complete = entry
    return ops, sorted(faults.values(), key=lambda fault: fault.start)
