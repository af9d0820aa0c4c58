"""Reading Locust's CSV reports back: refusals vs real failures, per request name."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.config import FROM_QUEUE_NAME, QUEUED_NAME, REFUSED_NAME

REPORT_SUFFIXES = ("_stats.csv", "_failures.csv", "_stats_history.csv")


@dataclass
class RunSummary:
    requests: dict[str, int] = field(default_factory=dict)  # "METHOD name" -> count
    failures: list[dict[str, str]] = field(default_factory=list)  # rows that are real failures
    exceptions: list[dict[str, str]] = field(default_factory=list)  # errors raised inside tasks
    refused: int = 0
    admitted: int = 0  # charging at once
    queued: int = 0  # asked to wait and joined the queue
    from_queue: int = 0  # of those, charging later

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def failure_count(self) -> int:
        return sum(int(row.get("Occurrences") or 0) for row in self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.exceptions

    def count(self, fragment: str) -> int:
        """Requests whose "METHOD name" contains `fragment`."""
        return sum(n for name, n in self.requests.items() if fragment in name)

    def lines(self) -> list[str]:
        out = [f"requests: {self.total_requests}  charging admitted: {self.admitted}  "
               f"refused (grid full, expected at the peak): {self.refused}  "
               f"failures: {self.failure_count}",
               f"cars charged: {self.admitted + self.from_queue} ({self.from_queue} after "
               f"queueing)  queued: {self.queued}  turned away: {self.refused}"]
        out += [f"  FAILURE x{row.get('Occurrences')}: {row.get('Method')} {row.get('Name')}: "
                f"{row.get('Error')}" for row in self.failures]
        out += [f"  EXCEPTION x{row.get('Count')} in a task: {row.get('Message')}"
                for row in self.exceptions]
        return out


def is_refusal(row: dict[str, str]) -> bool:
    return row.get("Name") == REFUSED_NAME


def report_paths(prefix: Path) -> list[Path]:
    return [prefix.with_name(prefix.name + suffix) for suffix in REPORT_SUFFIXES]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def summarize(prefix: Path) -> RunSummary:
    """Summary of `<prefix>_stats.csv` and `<prefix>_failures.csv` (FileNotFoundError if absent)."""
    summary = RunSummary()
    for row in _rows(prefix.with_name(prefix.name + "_stats.csv")):
        if row.get("Name") == "Aggregated":
            continue
        count = int(row.get("Request Count") or 0)
        summary.requests[f"{row.get('Type')} {row.get('Name')}"] = count
        if row.get("Name") == REFUSED_NAME:
            summary.refused += count
        elif row.get("Name") == QUEUED_NAME:
            summary.queued += count
        elif row.get("Name") == FROM_QUEUE_NAME:
            summary.from_queue += count
        elif row.get("Name") == "/charge":
            summary.admitted += count - int(row.get("Failure Count") or 0)
    failures = _rows(prefix.with_name(prefix.name + "_failures.csv"))
    summary.failures = [row for row in failures if not is_refusal(row)]
    exceptions = prefix.with_name(prefix.name + "_exceptions.csv")  # only some Locust versions
    summary.exceptions = _rows(exceptions) if exceptions.exists() else []
    return summary
