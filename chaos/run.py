"""One chaos run: hosts up, workload + nemesis for DURATION s, heal, converge, check, report."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from chaos import final as final_state
from chaos.checker import check
from chaos.history import Recorder
from chaos.hoststack import HostsStack, StackBusy
from chaos.nemesis import KINDS, Nemesis, schedule
from chaos.report import plot, write_json
from chaos.workload import COLD_KEYS, HOT_KEYS, Clients
from common.settings import REPO_ROOT
from stack.hosts import network_settings
from stack.services import NODES, SUBSTATION_NAMES

REPORTS = REPO_ROOT / "chaos" / "reports"
CONVERGE_TIMEOUT_S = 60.0


class DiskLossUnsupported(RuntimeError):
    """--require-disk-loss on nodes that cannot recover from a lost disk."""


def say(text: str) -> None:
    print(text, flush=True)


def disk_loss_supported(stack: HostsStack) -> bool:
    """The node says whether it recovers from a lost disk: /status has a "state" field."""
    try:
        status = requests.get(f"{stack.url(NODES[0])}/status", timeout=3).json()
    except (requests.RequestException, ValueError):
        return False
    return "state" in status


def run(duration: float, seed: int, out_dir: Path | None = None, disk_loss: str = "auto",
        faults: tuple[str, ...] = KINDS, kv_clients: int = 4,
        ev_clients: int = 3) -> tuple[Path, dict[str, Any]]:
    prefix, subnet = network_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = (out_dir or REPORTS) / f"{stamp}-seed{seed}"
    report.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gridclock-chaos-"))
    tunables = {"WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2")}
    stack = HostsStack(workdir, prefix, subnet, tunables)
    notes: list[str] = []
    try:
        say(f"chaos seed {seed}: starting the hosts stack ({prefix}*, {subnet})...")
        try:
            stack.start()
        except StackBusy:
            shutil.rmtree(report, ignore_errors=True)
            raise
        kinds = faults
        wants_disk_loss = any(k.startswith("disk-loss") for k in kinds)
        if wants_disk_loss and disk_loss == "no":
            kinds = tuple(k for k in kinds if not k.startswith("disk-loss"))
            notes.append("disk-loss disabled for this run (--no-disk-loss)")
        elif wants_disk_loss and disk_loss == "force":
            notes.append("disk-loss forced (--force-disk-loss) whether or not nodes recover")
        elif wants_disk_loss and disk_loss == "require" and not disk_loss_supported(stack):
            raise DiskLossUnsupported("the nodes' /status has no \"state\" field: they cannot "
                                      "recover from a lost disk yet")
        elif wants_disk_loss and not disk_loss_supported(stack):
            kinds = tuple(k for k in kinds if not k.startswith("disk-loss"))
            notes.append("disk-loss skipped: the nodes' /status has no \"state\" field, so "
                         "they cannot recover from a lost disk yet")
        plan = schedule(seed, duration, kinds)
        for note in notes:
            say(f"note: {note}")
        say(f"running {duration:.0f}s: {len(plan)} faults planned "
            f"({', '.join(p.kind for p in plan)})")
        recorder = Recorder(report / "history.jsonl")
        clients = Clients(recorder, [stack.url(n) for n in NODES], stack.url("balancer"),
                          seed, kv_clients, ev_clients,
                          {name: stack.url(name) for name in SUBSTATION_NAMES})
        nemesis = Nemesis(stack, recorder, plan)
        clients.start()
        nemesis.start()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline and nemesis.thread.is_alive():
            time.sleep(0.2)
        time.sleep(max(0.0, deadline - time.monotonic()))
        nemesis.join()
        nemesis.heal_everything()
        clients.stop()  # traffic stops, then the store must converge
        recorder.close()
        say("healed; waiting for convergence and reading the final state...")
        keys = set(HOT_KEYS) | set(COLD_KEYS)
        final = final_state.collect({n: stack.url(n) for n in NODES},
                                    {s: stack.url(s) for s in SUBSTATION_NAMES}, keys,
                                    recorder.wall_start, CONVERGE_TIMEOUT_S)
        final["seed"], final["duration_s"] = seed, duration
        final["notes"], final["nemesis_errors"] = notes, nemesis.errors
        final["plan"] = [{"id": p.id, "at": p.at, "kind": p.kind, "hold": p.hold, **p.params}
                         for p in plan]
        write_json(report / "final.json", final)
        verdict = check(recorder.entries, final)
        verdict["counts"]["converged_after_s"] = final["converged_after_s"]
        verdict["notes"] = notes + [f"nemesis: {e}" for e in nemesis.errors]
        write_json(report / "verdict.json", verdict)
        plot(recorder.entries, report / "timeline.png",
             f"seed {seed}, {duration:.0f}s: {'valid' if verdict['valid'] else 'INVALID'} "
             f"({len(verdict['violations'])} violations)")
        return report, verdict
    finally:
        stack.stop()
        logs = workdir / "run" / "logs"
        if logs.exists():
            shutil.copytree(logs, report / "logs", dirs_exist_ok=True)
        if (workdir / "up-hosts.log").exists():
            shutil.copy(workdir / "up-hosts.log", report / "up-hosts.log")
        shutil.rmtree(workdir, ignore_errors=True)


def summary(report: Path, verdict: dict[str, Any]) -> str:
    c = verdict["counts"]
    lines = [f"report: {report}",
             f"valid: {verdict['valid']}  violations: {len(verdict['violations'])} "
             f"{json.dumps(c.get('violations_by_kind', {}))}",
             f"operations: {c['operations']} (ok {c['ok']}, fail {c['fail']}, info {c['info']});"
             f" KV writes acked {c['kv_writes_acked']}, reads {c['kv_reads_ok']}, delivery "
             f"events checked {c['delivery_events_checked']}; charges admitted "
             f"{c['charges_admitted']}, refused {c['charges_refused']} (judged "
             f"{c['refusals_judged']})",
             f"faults: {json.dumps(c['faults'])}; converged after {c.get('converged_after_s')} s;"
             f" writes lost to disk loss: {c['writes_lost_to_disk_loss']}"]
    for violation in verdict["violations"][:10]:
        lines.append(f"  VIOLATION {violation['kind']}: {violation['detail']}")
    for note in verdict.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)
