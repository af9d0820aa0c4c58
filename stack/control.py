"""`make ps | stop | start | kill SVC=...`: talk to the running `make up` through supervisord."""

from __future__ import annotations

import json
import os
import signal
import xmlrpc.client
from pathlib import Path

from stack.health import healthy
from stack.services import Service
from stack.supervisor import GROUP, NotRunning, client, process_infos


class ControlError(Exception):
    """A user mistake or a stack that is not running; printed without a traceback."""


def _state(run_dir: Path) -> dict[str, dict]:
    path = run_dir / "stack.json"
    if not path.exists():
        raise ControlError(f"the stack is not running (no {path}): start it with `make up`")
    return {svc["name"]: svc for svc in json.loads(path.read_text())["services"]}


def status(run_dir: Path) -> list[dict]:
    """One row per service: name, state, pid, (host, address under up-hosts,) port, health, url."""
    state = _state(run_dir)
    try:
        infos = {info["name"]: info for info in process_infos(run_dir / "supervisor.sock")}
    except NotRunning as exc:
        raise ControlError(f"the stack is not running ({exc}): start it with `make up`") from exc
    rows = []
    for name, svc in state.items():
        info = infos.get(name, {})
        running = info.get("statename") == "RUNNING"
        probe = Service(name, svc["kind"], (), {}, svc["port"], health_path=svc["health_path"])
        address = svc.get("address", "127.0.0.1")
        row = {"name": name, "state": info.get("statename", "UNKNOWN"),
               "pid": info.get("pid") or None}
        if "address" in svc:  # make up-hosts: every service on its own host
            row.update(host=svc["host"], address=address)
        row.update(port=svc["port"],
                   health=("healthy" if healthy(probe, host=address, timeout=0.5)
                           else "unhealthy") if running else "-",
                   url=svc["url"])
        rows.append(row)
    return rows


def format_status(rows: list[dict]) -> str:
    header = {"name": "SERVICE", "state": "STATE", "pid": "PID", "host": "HOST",
              "address": "ADDRESS", "port": "PORT", "health": "HEALTH", "url": "URL"}
    header = {k: v for k, v in header.items() if any(k in row for row in rows) or not rows}
    table = [header] + [{k: "-" if row.get(k) is None else str(row[k]) for k in header}
                        for row in rows]
    widths = {k: max(len(r[k]) for r in table) for k in header}
    return "\n".join("  ".join(r[k].ljust(widths[k]) for k in header).rstrip() for r in table)


def _check_name(run_dir: Path, name: str | None) -> str:
    names = list(_state(run_dir))
    if not name or name not in names:
        given = f"unknown service {name!r}" if name else "no service given"
        raise ControlError(f"{given}: use SVC=<one of {', '.join(names)}>")
    return name


def _call(run_dir: Path, method: str, name: str) -> None:
    try:
        getattr(client(run_dir / "supervisor.sock").supervisor, method)(f"{GROUP}:{name}", True)
    except xmlrpc.client.Fault as fault:
        raise ControlError(f"{method} {name}: {fault.faultString}") from fault
    except OSError as exc:
        raise ControlError(f"the stack is not running ({exc}): start it with `make up`") from exc


def stop(run_dir: Path, name: str | None) -> str:
    """Stop one service; it stays stopped until `start`."""
    name = _check_name(run_dir, name)
    _call(run_dir, "stopProcess", name)
    return f"{name} stopped (make start SVC={name} brings it back)"


def start(run_dir: Path, name: str | None) -> str:
    name = _check_name(run_dir, name)
    _call(run_dir, "startProcess", name)
    return f"{name} started"


def kill(run_dir: Path, name: str | None) -> str:
    """SIGKILL the service's whole process group, as a crash; supervisord restarts it."""
    name = _check_name(run_dir, name)
    try:
        info = next(i for i in process_infos(run_dir / "supervisor.sock") if i["name"] == name)
    except (NotRunning, StopIteration) as exc:
        raise ControlError(f"the stack is not running: start it with `make up` ({exc})") from exc
    if info["statename"] != "RUNNING" or not info["pid"]:
        raise ControlError(f"{name} is {info['statename']}, not running: nothing to kill")
    os.killpg(info["pid"], signal.SIGKILL)  # pid == process group id (supervisord setpgrp)
    return f"{name} (pid {info['pid']}) killed with SIGKILL; it restarts automatically"
