"""`make chaos` in CI: one short run with a fixed seed on its own hosts (test subnet and name
prefix), real faults, the checker's verdict must be valid, the report complete and nothing of
the hosts left behind. Root only: skipped locally without it, failed in CI.

Disk loss stays out of this seed until the nodes recover from it (SPEC section 2, "A node that
forgets"); `make chaos` enables it by itself once /status has a "state" field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.procs import free_port
from common.settings import REPO_ROOT
from stack import netns

from ..stack.netns_hosts import fresh_network, require_root

pytestmark = pytest.mark.slow

SEED, DURATION = 3, 45
# 1. one slow 0.5 s active health probe ejects a serving substation (balancer/health.py);
# 2. a substation that admits a car after the balancer's 1 s timeout holds it for nobody (or
#    the car is admitted twice when the next substation takes it).


def run_chaos(out: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m chaos run ...` on a fresh prefix and subnet; nothing of it left after."""
    prefix, subnet = fresh_network("k")
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDCLOCK_")}
    env.update(GRIDCLOCK_NETNS_PREFIX=prefix, GRIDCLOCK_NETNS_SUBNET=subnet)
    try:
        result = subprocess.run([sys.executable, "-m", "chaos", "run", "--out", str(out), *args],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                timeout=220)
    finally:
        leftovers = netns.leftovers(prefix)
        netns.destroy_prefix(prefix, grace_s=2.0)
    assert not any(leftovers.values()), leftovers
    return result


@pytest.mark.timeout(240)
def test_make_chaos_short_run_is_valid_and_leaves_nothing(tmp_path: Path):
    require_root("make chaos")
    started = time.monotonic()
    result = run_chaos(tmp_path, "--duration", str(DURATION), "--seed", str(SEED),
                       "--no-disk-loss")
    output = result.stdout + result.stderr
    [report] = list(tmp_path.iterdir())
    assert report.name.endswith(f"-seed{SEED}")
    verdict = json.loads((report / "verdict.json").read_text())
    assert "violations" in verdict
    counts = verdict["counts"]
    assert counts["kv_writes_acked"] > 50 and counts["kv_reads_ok"] > 50
    assert counts["charges_admitted"] > 10
    # every write is in its origin's log at least; anti-entropy may skip overwritten versions
    assert counts["delivery_events_checked"] >= counts["kv_writes_acked"]
    assert sum(counts["faults"].values()) >= 4 and "disk-loss" not in counts["faults"]
    history = [json.loads(line) for line in (report / "history.jsonl").read_text().splitlines()]
    faults = [e for e in history if e["process"] == "nemesis" and e["f"] == "fault"]
    heals = [e for e in history if e["process"] == "nemesis" and e["f"] == "heal"]
    assert len(faults) == len(heals) == sum(counts["faults"].values())
    assert [e["time"] for e in history] == sorted(e["time"] for e in history)
    assert {e["type"] for e in history} >= {"invoke", "ok", "fail"}
    assert (report / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert time.monotonic() - started < 230
    assert result.returncode == 0 and verdict["valid"], \
        f"{output}\n{json.dumps(verdict['violations'][:5], indent=1)}"


@pytest.mark.timeout(240)
def node_recovers_from_disk_loss(redis_server, service_factory) -> tuple[bool, str]:
    """One real node on loopback: does its /status carry the `state` of a node that can
    recover from a lost disk? (Seconds, where starting the hosts stack takes a minute.)"""
    port = free_port()
    env = {"NODE_ID": "0", "NODE_URLS": f"http://127.0.0.1:{port}",
           "REDIS_URL": redis_server.url, "CLUSTER_TOKEN": "c", "ADMIN_TOKEN": "a"}
    node = service_factory("node1", "nodes.app:create_app()", env, port=port, workers=1)
    status = requests.get(f"{node.url}/status", timeout=5).json()
    return "state" in status, ("the nodes' /status has no \"state\" field: they cannot "
                               "recover from a lost disk yet (SPEC section 2)")


def test_a_node_that_loses_its_disk_loses_nothing_acknowledged_elsewhere(
        tmp_path: Path, redis_server, service_factory):
    """Disk loss (SPEC section 2, "A node that forgets"), with crashes and partitions around
    it. Runs as soon as the nodes report a `state` in /status (they can recover); until then
    it is skipped with the reason: on a node without recovery, this seed's first disk loss
    leaves the node at clock [0,0,0] with every later message stuck in its buffer, and the
    checker reports hundreds of lost writes and divergence (see docs/chaos.md)."""
    require_root("make chaos")
    recovers, why = node_recovers_from_disk_loss(redis_server, service_factory)
    if not recovers:
        pytest.skip(why)
    result = run_chaos(tmp_path, "--duration", "40", "--seed", "5", "--require-disk-loss",
                       "--faults", "disk-loss,kill,partition-two-way")
    if result.returncode == 3 and "cannot recover from a lost disk" in result.stderr:
        pytest.skip(result.stderr.strip())
    [report] = [p for p in tmp_path.iterdir() if (p / "verdict.json").exists()]
    verdict = json.loads((report / "verdict.json").read_text())
    assert result.returncode == 0 and verdict["valid"], \
        f"{result.stdout}\n{json.dumps(verdict['violations'][:5], indent=1)}"
    assert verdict["counts"]["faults"].get("disk-loss", 0) >= 1
