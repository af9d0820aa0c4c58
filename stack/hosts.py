"""`make up-hosts` / `make down-hosts`: the stack of `make up` with every service on its own host.

The services are exactly those of `stack.services` (the one list), laid out by HostsLayout:
each service is reached by its name (`redis-node1`, `substation2`, ...), which the namespace's
/etc/hosts (`/etc/netns/<ns>/hosts`, bind-mounted by `ip netns exec`) maps to its host's
address. A KV node and its Redis share a host; every other service has its own. Ports are the
spec's, since each host has its own port space. supervisord (as in `make up`) runs every
program through `ip netns exec`, which execs it: pids, `make kill/stop/start` work unchanged.

Cleanup: on exit (Ctrl-C, SIGTERM) the runner removes every namespace, link and file it made;
a reaper process, started first and watching a pipe to the runner, does the same when the
runner dies without cleaning up (SIGKILL, crash). `make down-hosts` removes leftovers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from common.settings import REPO_ROOT, ConfigError
from stack import netns
from stack.config import StackSettings, load_settings
from stack.health import healthy
from stack.services import (
    NODE_REDIS,
    NODES,
    PROMETHEUS,
    REDIS,
    Layout,
    Service,
    services,
)
from stack.up import Runner, local_layout, say

DEFAULT_SUBNET = "10.211.0.0/24"
DEFAULT_PREFIX = "gc-"
REAPER_GRACE_S = 8.0


def host_of(name: str) -> str:
    """The host a service lives on: a KV node's Redis shares its node's host."""
    return dict(zip(NODE_REDIS, NODES, strict=True)).get(name, name)


def hosts_for(names: list[str]) -> tuple[str, ...]:
    """Distinct hosts of these services, in service order."""
    return tuple(dict.fromkeys(host_of(name) for name in names))


@dataclass(frozen=True)
class HostsLayout(Layout):
    """Services by name (resolved inside each namespace), listening on every address of
    their own host; `address(name)` is where the root namespace reaches them."""

    addresses: Mapping[str, str] = field(default_factory=dict)  # service name -> address

    def host(self, name: str) -> str:
        return name

    @property
    def bind_host(self) -> str:
        return "0.0.0.0"  # the host's own interfaces only: its namespace has nothing else

    def address(self, name: str) -> str:
        return self.addresses[name]

    def direct_url(self, name: str) -> str:
        """The URL from the root namespace (the runner, `make ps`, chaos clients)."""
        return f"http://{self.address(name)}:{self.ports[name]}"


def network_settings() -> tuple[str, str]:
    """(name prefix, subnet) from GRIDCLOCK_NETNS_PREFIX and GRIDCLOCK_NETNS_SUBNET."""
    prefix = os.environ.get("GRIDCLOCK_NETNS_PREFIX") or DEFAULT_PREFIX
    subnet = os.environ.get("GRIDCLOCK_NETNS_SUBNET") or DEFAULT_SUBNET
    return netns.check_prefix(prefix), subnet


def plan(settings: StackSettings, prefix: str, subnet: str,
         without: tuple[str, ...] = ()) -> tuple[netns.Network, HostsLayout, list[Service]]:
    """The network, layout and services (argv wrapped in `ip netns exec`) of one hosts stack."""
    # The same layout as `make up` on the spec's ports, plus each service's host address.
    base = local_layout(replace(settings, port_offset=0))
    names = [svc.name for svc in services(base) if svc.name not in without]
    network = netns.Network(prefix, subnet, hosts_for(names))
    addresses = {name: network.addresses[host_of(name)] for name in names}
    layout = HostsLayout(**{f.name: getattr(base, f.name) for f in fields(Layout)},
                         addresses=addresses)
    svcs = [replace(svc, argv=netns.in_netns(network.netns(host_of(svc.name)), svc.argv))
            for svc in services(layout) if svc.name in names]
    return network, layout, svcs


class HostsRunner(Runner):
    """`make up` in namespaces: same supervisord, programs wrapped in `ip netns exec`."""

    def __init__(self, settings: StackSettings, prefix: str, subnet: str,
                 without: tuple[str, ...] = ()):
        self.settings = settings
        self.missing_prometheus = shutil.which("prometheus") is None
        if self.missing_prometheus:
            without = (*without, "prometheus")
        self.network, self.layout, all_svcs = plan(settings, prefix, subnet, without)
        self.svcs = [svc for svc in all_svcs if svc.kind != PROMETHEUS
                     or not self.missing_prometheus]
        self.supervisord = None
        self.stop_requested_at = None
        self.pids = set()
        self._checked = False

    def preflight(self) -> None:
        if self._checked:
            return
        from stack.supervisor import NotRunning, process_infos

        try:
            process_infos(self.settings.socket_path)
        except NotRunning:
            pass
        else:
            raise ConfigError("a stack is already running with this run directory (see "
                              "`make ps`); stop it first")
        found = netns.leftovers(self.network.prefix)
        if any(found.values()):
            raise ConfigError(f"hosts named {self.network.prefix}* exist already (another "
                              "`make up-hosts` or `make chaos`, or leftovers: `make down-hosts`)")
        self._checked = True

    def rows(self) -> list[dict]:
        rows = []
        for svc in self.svcs:
            address = self.layout.address(svc.name)
            url = (f"redis://{address}:{svc.port}/0" if svc.kind == REDIS
                   else self.layout.direct_url(svc.name))
            rows.append({"name": svc.name, "kind": svc.kind, "port": svc.port,
                         "health_path": svc.health_path, "host": host_of(svc.name),
                         "netns": self.network.netns(host_of(svc.name)),
                         "address": address, "url": url})
        return rows

    def healthy(self, svc: Service) -> bool:
        return healthy(svc, host=self.layout.address(svc.name), timeout=0.5)

    def banner(self) -> str:
        rows = self.rows()
        width = max(len(row["name"]) for row in rows)
        lines = ["", f"GridClock is up on hosts (namespaces {self.network.prefix}*, "
                 f"bridge {self.network.bridge} {self.network.subnet}):"]
        lines += [f"  {row['name']:<{width}}  {row['host']:<11} {row['url']}" for row in rows]
        lines += ["  make ps | make stop SVC=node2 | make start SVC=node2 | make kill SVC=node2 | "
                  "Ctrl-C stops everything and removes the hosts", ""]
        return "\n".join(lines)

    def run(self) -> int:
        self.preflight()
        reaper = start_reaper(self.network.prefix)
        try:
            names = {svc.name: host_of(svc.name) for svc in self.svcs}
            self.network.create(names)
            say(f"made {len(self.network.hosts)} hosts on {self.network.bridge} "
                f"{self.network.subnet}")
            return super().run()
        finally:
            removed = netns.destroy_prefix(self.network.prefix, grace_s=2.0)
            say(f"removed {len(removed)} namespaces, links and files")
            if reaper.stdin:
                reaper.stdin.close()
            try:
                reaper.wait(REAPER_GRACE_S + 5)
            except subprocess.TimeoutExpired:
                reaper.kill()


def start_reaper(prefix: str) -> subprocess.Popen:
    """A process that removes every `prefix` object once our end of its stdin pipe closes,
    however this process ends (the kernel closes the pipe even after SIGKILL)."""
    return subprocess.Popen([sys.executable, "-m", "stack.hosts", "reap", "--prefix", prefix],
                            stdin=subprocess.PIPE, cwd=REPO_ROOT, start_new_session=True)


def reap(prefix: str) -> int:
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.stdin.buffer.read()  # until the runner is gone
    removed = netns.destroy_prefix(prefix, grace_s=REAPER_GRACE_S)
    if removed:
        print(f"up-hosts reaper: removed {', '.join(removed)}", file=sys.stderr, flush=True)
    return 0


def up_hosts(without: tuple[str, ...] = ()) -> int:
    why = netns.missing_requirements()
    if why:
        print(f"make up-hosts: {why}", file=sys.stderr)
        return 2
    try:
        prefix, subnet = network_settings()
        return HostsRunner(load_settings(write_dotenv=True), prefix, subnet, without).run()
    except (ConfigError, FileNotFoundError, netns.NetnsError) as exc:
        print(f"make up-hosts: {exc}", file=sys.stderr)
        return 2


def down_hosts() -> int:
    why = netns.missing_requirements()
    if why:
        print(f"make down-hosts: {why}", file=sys.stderr)
        return 2
    prefix, _ = network_settings()
    removed = netns.destroy_prefix(prefix, grace_s=5.0)
    print(f"removed: {', '.join(removed)}" if removed else f"nothing named {prefix}* to remove")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.hosts")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reap").add_argument("--prefix", required=True)
    args = parser.parse_args(argv)
    return reap(args.prefix)


if __name__ == "__main__":
    sys.exit(main())
