"""What a test run leaves behind: files in its TMPDIR and processes it started.

Every process the suite starts inherits TMPDIR=<the run's temp dir> (tests/conftest.py sets it
before anything starts), so that value in a process's environment marks it as ours, whoever
started it (Proc, Playwright's Chromium, a `make up` under test). Only processes started through
common.procs are also known by process group, which is what non-Linux systems check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from common import procs

RUN_TMP_KEY = pytest.StashKey[Path]()
SETTLE_S = 5.0  # a process SIGTERMed at the very end may still be exiting


def listing(root: Path) -> set[str]:
    """Every file and directory under `root`, relative to it."""
    if not root.exists():
        return set()
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def _describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        text = " ".join(a.decode(errors="replace") for a in argv if a)
    except OSError:
        text = "?"
    return f"pid {pid}: {text[:160]}"


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def stray_processes(run_tmp: Path) -> list[int]:
    """Live (not zombie) processes started by this run, other than this process."""
    if Path("/proc/self/environ").exists():
        marker = f"TMPDIR={run_tmp}".encode()
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        return sorted(pid for pid in pids
                      if pid != os.getpid() and _state(pid) not in (None, "Z")
                      and _environ_has(pid, marker))
    return sorted(pgid for pgid in procs.started_groups() if procs.group_alive(pgid))


def check(run_tmp: Path, before: set[str]) -> str:
    """'' when the run left nothing; else what it left (stray processes are killed)."""
    problems = []
    deadline = time.monotonic() + SETTLE_S
    strays = stray_processes(run_tmp)
    while strays and time.monotonic() < deadline:
        time.sleep(0.1)
        strays = stray_processes(run_tmp)
    if strays:
        problems += ["still running: " + _describe(pid) for pid in strays]
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    left = sorted(listing(run_tmp) - before)
    tops = sorted({entry.split(os.sep)[0] for entry in left})
    problems += [f"left in {run_tmp}: {top}" for top in tops]
    return "\n".join(problems)
