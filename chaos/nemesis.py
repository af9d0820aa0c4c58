"""The nemesis: real faults on a schedule drawn from the seed, each recorded as fault and heal.

Partitions, slow and lossy links are nftables rules in a table `chaos` inside the namespaces
involved (dropped, never rejected, as a real partition does); pauses are SIGSTOP/SIGCONT of a
service's process group; crashes are SIGKILL of it (supervisord restarts it); a disk loss stops
a node's Redis, deletes its data and starts it again. Faults run one at a time: the schedule is
a list of (start, kind, parameters, hold) fixed by the seed before the run starts.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chaos.history import Recorder
from chaos.hoststack import HostsStack
from common.procs import wait_until
from stack import netns
from stack.services import GRID_REDIS, NODE_REDIS, NODES, SUBSTATION_NAMES

TABLE = "chaos"
GRID_HOSTS = (*SUBSTATION_NAMES, GRID_REDIS, "balancer")
KINDS = ("partition-one-way", "partition-two-way", "isolate-node", "partition-majority",
         "grid-redis-cut", "pause", "kill", "slow-link", "lossy-link", "disk-loss")
PAUSE_TARGETS = (*NODES, *NODE_REDIS, GRID_REDIS)
KILL_TARGETS = (*NODES, *NODE_REDIS, *SUBSTATION_NAMES, "balancer", GRID_REDIS)
RECOVERY_TIMEOUT_S = 40.0


@dataclass
class Planned:
    at: float
    kind: str
    params: dict[str, Any]
    hold: float
    id: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def schedule(seed: int, duration: float, kinds: tuple[str, ...]) -> list[Planned]:
    """The faults of one run: the same seed and kinds give the same list. A kind may name its
    target (`kill=redis-grid`, `pause=node2`, `isolate-node=node1`) to focus a run."""
    rng = random.Random(seed)
    out, t = [], 3.0
    while kinds:
        hold = round(rng.uniform(2.0, 7.0), 2)
        kind, _, target = rng.choice(kinds).partition("=")
        if t + hold > duration - 2.0:
            return out
        params = _params(rng, kind)
        if target:
            params[next(iter(params))] = target
        out.append(Planned(round(t, 2), kind, params, hold, id=len(out) + 1))
        t += hold + rng.uniform(1.0, 3.0)
    return out


def _params(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind in ("partition-one-way", "partition-two-way"):
        a, b = rng.sample(NODES, 2)
        return {"from": a, "to": b}
    if kind in ("isolate-node", "slow-link", "lossy-link", "disk-loss"):
        return {"node": rng.choice(NODES)}
    if kind == "partition-majority":
        minority = [rng.choice(NODES)] + [h for h in GRID_HOSTS if rng.random() < 0.3]
        return {"minority": minority}
    if kind == "grid-redis-cut":
        return {"substation": rng.choice(SUBSTATION_NAMES)}
    if kind == "pause":
        return {"target": rng.choice(PAUSE_TARGETS)}
    if kind == "kill":
        return {"target": rng.choice(KILL_TARGETS)}
    raise ValueError(kind)


def _host(name: str) -> str:
    return dict(zip(NODE_REDIS, NODES, strict=True)).get(name, name)


class Nemesis:
    def __init__(self, stack: HostsStack, recorder: Recorder, plan: list[Planned]):
        self.stack, self.recorder, self.plan = stack, recorder, plan
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self.errors: list[str] = []
        self.touched: set[str] = set()  # namespaces that may hold a chaos table
        self.paused: set[str] = set()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.stop_event.set()
        self.thread.join()

    # -- the schedule ----------------------------------------------------------------------
    def _run(self) -> None:
        for planned in self.plan:
            if self.stop_event.wait(max(0.0, planned.at - self.recorder.now())):
                return
            try:
                self._inject(planned)
                self.stop_event.wait(planned.hold)
            except Exception as exc:  # noqa: BLE001 - a fault that failed is reported
                self.errors.append(f"fault {planned.id} {planned.kind}: {exc!r}")
            finally:
                try:
                    self._heal(planned)
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"heal {planned.id} {planned.kind}: {exc!r}")

    def _record(self, f: str, planned: Planned, **extra: Any) -> None:
        hosts = self._hosts(planned)
        value = {"id": planned.id, "kind": planned.kind, **planned.params, "hosts": hosts,
                 "grid": any(h in GRID_HOSTS for h in hosts),
                 "kv": any(h in NODES for h in hosts), **extra}
        self.recorder.record("nemesis", "info", f, value)

    @staticmethod
    def _hosts(planned: Planned) -> list[str]:
        p = planned.params
        if "from" in p:
            return [p["from"], p["to"]]
        if "node" in p:
            return [p["node"]]
        if "minority" in p:
            return sorted(set(NODES) | set(GRID_HOSTS))
        if "substation" in p:
            return [p["substation"], GRID_REDIS]
        return [_host(p["target"])]

    def _inject(self, planned: Planned) -> None:
        kind, p = planned.kind, planned.params
        self._record("fault", planned)
        if kind == "partition-one-way":
            self._drop({p["from"]: ([p["to"]], [])}, {p["to"]: ([], [p["from"]])})
        elif kind == "partition-two-way":
            self._drop({p["from"]: ([p["to"]], [p["to"]])}, {p["to"]: ([p["from"]], [p["from"]])})
        elif kind == "isolate-node":
            others = [n for n in NODES if n != p["node"]]
            self._drop({p["node"]: (others, others)}, *({o: ([p["node"]], [p["node"]])}
                                                        for o in others))
        elif kind == "partition-majority":
            minority = set(p["minority"])
            majority = [h for h in (*NODES, *GRID_HOSTS) if h not in minority]
            rules = [{h: (majority, majority)} for h in minority]
            rules += [{h: (sorted(minority), sorted(minority))} for h in majority]
            self._drop(*rules)
        elif kind == "grid-redis-cut":
            sub = p["substation"]
            self._drop({sub: ([GRID_REDIS], [GRID_REDIS])}, {GRID_REDIS: ([sub], [sub])})
        elif kind == "slow-link":
            self._link(p["node"], "limit rate over 16 kbytes/second drop")
        elif kind == "lossy-link":
            self._link(p["node"], "numgen random mod 100 < 35 drop")
        elif kind == "pause":
            self.paused.add(p["target"])
            self.stack.signal(p["target"], signal.SIGSTOP)
        elif kind == "kill":
            pid = self.stack.signal(p["target"], signal.SIGKILL)
            planned.info["pid"] = pid
        elif kind == "disk-loss":
            redis = NODE_REDIS[NODES.index(p["node"])]
            self.stack.stop_service(redis)
            data = self.stack.data_dir / redis
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True, exist_ok=True)
            self.stack.start_service(redis)

    def _drop(self, *rules: dict[str, tuple[list[str], list[str]]]) -> None:
        """Each rule maps a host to (hosts it must not send to, hosts it must not hear)."""
        for rule in rules:
            for host, (to, from_) in rule.items():
                lines = []
                if to:
                    lines.append(f"ip daddr {{ {self._addrs(to)} }} drop")
                if from_:
                    lines.append(f"ip saddr {{ {self._addrs(from_)} }} drop")
                self._table(host, out=[lines[0]] if to else [],
                            inp=[lines[-1]] if from_ else [])

    def _link(self, node: str, verdict: str) -> None:
        peers = [n for n in NODES if n != node]
        self._table(node, out=[f"ip daddr {{ {self._addrs(peers)} }} {verdict}"], inp=[])

    def _addrs(self, hosts: list[str]) -> str:
        return ", ".join(sorted({self.stack.address(h) for h in hosts}))

    def _table(self, host: str, out: list[str], inp: list[str]) -> None:
        ns = self.stack.netns(host)
        self.touched.add(ns)
        chains = []
        for name, hook, rules in (("out", "output", out), ("in", "input", inp)):
            body = "\n".join(f"    {r}" for r in rules)
            chains.append(f"  chain {name} {{\n    type filter hook {hook} priority 0; "
                          f"policy accept;\n{body}\n  }}")
        # Add-then-flush-then-fill in one transaction: idempotent and atomic.
        script = (f"table inet {TABLE} {{}}\nflush table inet {TABLE}\n"
                  f"table inet {TABLE} {{\n" + "\n".join(chains) + "\n}\n")
        netns.nft(ns, script)

    # -- healing ---------------------------------------------------------------------------
    def _clear_tables(self) -> None:
        for ns in sorted(self.touched):
            netns.run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", TABLE,
                      check=False)
        self.touched.clear()

    def _heal(self, planned: Planned) -> None:
        kind, p = planned.kind, planned.params
        extra: dict[str, Any] = {}
        if kind == "pause":
            self.stack.signal(p["target"], signal.SIGCONT)
            self.paused.discard(p["target"])
        elif kind in ("kill", "disk-loss"):
            target = p.get("target") or p["node"]
            extra["recovered_s"] = self._await_recovery(target)
        self._clear_tables()
        self._record("heal", planned, **extra)

    def _await_recovery(self, name: str) -> float | None:
        """Seconds until the service is healthy again (restarted by supervisord)."""
        t0 = time.monotonic()
        try:
            wait_until(lambda: self.stack.healthy(name), timeout=RECOVERY_TIMEOUT_S,
                       interval=0.2, message=f"{name} healthy again")
        except TimeoutError as exc:
            self.errors.append(str(exc))
            return None
        return round(time.monotonic() - t0, 2)

    def heal_everything(self) -> None:
        """After the run: no rule, no paused process, every service started."""
        self._clear_tables()
        for ns in self.stack.namespaces:
            netns.run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", TABLE,
                      check=False)
        for name in list(self.stack.rows):
            with contextlib.suppress(Exception):
                self.stack.signal(name, signal.SIGCONT)
            self.stack.start_service(name)
        self.recorder.record("nemesis", "info", "heal-all", {})
