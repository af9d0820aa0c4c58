"""python -m chaos.checker REPORT_DIR: check history.jsonl against final.json again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chaos.checker import check
from chaos.checker.history import read_jsonl

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m chaos.checker REPORT_DIR")
    report = Path(sys.argv[1])
    verdict = check(read_jsonl(report / "history.jsonl"),
                    json.loads((report / "final.json").read_text()))
    print(json.dumps(verdict, indent=1))
    sys.exit(0 if verdict["valid"] else 1)
