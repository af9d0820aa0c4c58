"""The history recorder: every invocation and completion, one JSON line each, in order.

Times are seconds on the monotonic clock since the run started (`wall_start` in final.json
maps them to wall-clock time). Processes are `kv<i>` (causal KV sessions), `ev<i>` (charging
clients) and `nemesis`; each does one operation at a time, as in Jepsen.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.t0 = time.monotonic()
        self.wall_start = time.time()
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._fh = open(path, "w")  # noqa: SIM115 - closed by close()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def record(self, process: str, type_: str, f: str, value: dict[str, Any] | None) -> dict:
        with self._lock:  # index order == time order == file order
            entry = {"index": len(self.entries), "time": round(self.now(), 6),
                     "process": process, "type": type_, "f": f, "value": value}
            self.entries.append(entry)
            self._fh.write(json.dumps(entry) + "\n")
            return entry

    def close(self) -> None:
        with self._lock:
            self._fh.close()
