"""Linux network namespaces joined by a bridge: the "hosts" of `make up-hosts`.

One namespace per host, each with one veth into a bridge in the root namespace and one address
from the subnet (the bridge holds the first). No default route and no forwarding: packets go
from a namespace to another or to the root namespace, never out of the bridge. Every object
made here carries the prefix (`gc-` by default), which is how `destroy` and `make down-hosts`
find them, and nothing else is touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NETNS_ETC = Path("/etc/netns")
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,5}-$")  # veth names must stay within 15 bytes


class NetnsError(RuntimeError):
    """A namespace command failed or this machine cannot make namespaces."""


def run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def succeeds(*argv: str) -> bool:
    return subprocess.run(argv, capture_output=True).returncode == 0


def missing_requirements() -> str | None:
    """Why namespaces cannot be made here, in one line; None when they can."""
    if os.uname().sysname != "Linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, bridge, nftables): run it as root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: install {package}"
    return None


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix):
        raise NetnsError(f"name prefix {prefix!r} must look like 'gc-' (a letter, up to 5 "
                         "letters or digits, then '-')")
    return prefix


@dataclass(frozen=True)
class Network:
    """A bridge and one namespace per host; `addresses[host]` is the host's IPv4 address."""

    prefix: str
    subnet: str
    hosts: tuple[str, ...]

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        net = ipaddress.ip_network(self.subnet)
        if net.version != 4 or not net.is_private or net.num_addresses < len(self.hosts) + 3:
            raise NetnsError(f"subnet {self.subnet} must be a private IPv4 network with room "
                             f"for {len(self.hosts) + 1} addresses")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.subnet)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def bridge_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def addresses(self) -> dict[str, str]:
        base = self.network.network_address
        return {host: str(base + 2 + i) for i, host in enumerate(self.hosts)}

    def netns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def veth(self, host: str) -> str:
        return f"{self.prefix}v{self.hosts.index(host)}"

    def create(self, names: dict[str, str]) -> None:
        """Make the bridge, the namespaces, their links and /etc/netns/NS/hosts (`names` maps
        every service name to its host). Half-made state is removed when a step fails; if
        anything with the prefix exists already it is someone else's: refuse, touch nothing."""
        if any(leftovers(self.prefix).values()):
            raise NetnsError(f"objects named {self.prefix}* exist already")
        try:
            self._create(names)
        except BaseException:
            self.destroy()
            raise

    def _create(self, names: dict[str, str]) -> None:
        prefixlen = self.network.prefixlen
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.bridge_address}/{prefixlen}", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{self.addresses[host]} {name}" for name, host in names.items()]
        hosts_file = "\n".join(lines) + "\n"
        for host, address in self.addresses.items():
            ns = self.netns(host)
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", self.veth(host), "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            run("ip", "link", "set", self.veth(host), "master", self.bridge, "up")
            run("ip", "-n", ns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            etc = NETNS_ETC / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file)

    def destroy(self) -> list[str]:
        return destroy_prefix(self.prefix)


def netns_pids(ns: str) -> list[int]:
    out = run("ip", "netns", "pids", ns, check=False)
    return [int(pid) for pid in out.split() if pid.isdigit()]


def leftovers(prefix: str) -> dict[str, list[str]]:
    """Every namespace, link, /etc/netns directory and root nft table with the prefix."""
    check_prefix(prefix)
    spaces = [line.split()[0] for line in run("ip", "netns", "list", check=False).splitlines()
              if line.startswith(prefix)]
    links = []
    for line in run("ip", "-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(prefix):
            links.append(name)
    etc = sorted(p.name for p in NETNS_ETC.glob(f"{prefix}*")) if NETNS_ETC.exists() else []
    table_prefix = prefix.replace("-", "_")
    tables = [" ".join(line.split()[1:3])
              for line in run("nft", "list", "tables", check=False).splitlines()
              if len(line.split()) == 3 and line.split()[2].startswith(table_prefix)]
    return {"netns": spaces, "links": links, "etc": etc, "nft": tables}


def destroy_prefix(prefix: str, grace_s: float = 0.0) -> list[str]:
    """Remove everything carrying `prefix`: processes still inside its namespaces (SIGTERM,
    then SIGKILL after `grace_s`), the namespaces, host-side links, bridge, /etc/netns dirs and
    root nft tables. Idempotent; returns what it removed."""
    found = leftovers(prefix)
    removed = []
    pids = [pid for ns in found["netns"] for pid in netns_pids(ns)]
    if pids and grace_s > 0:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(netns_pids(ns) for ns in found["netns"]):
            time.sleep(0.1)
    for ns in found["netns"]:
        for pid in netns_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # Deleting the host end of a veth deletes its pair at once (the namespace may outlive
    # its name for a moment while the kernel reaps it).
    for link in sorted(found["links"], key=lambda name: name.endswith("br")):
        if succeeds("ip", "link", "del", link):
            removed.append(f"link {link}")
    for ns in found["netns"]:
        if succeeds("ip", "netns", "del", ns):
            removed.append(f"netns {ns}")
    for name in found["etc"]:
        shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        removed.append(f"{NETNS_ETC / name}")
    for table in found["nft"]:
        if succeeds("nft", "delete", "table", *table.split()):
            removed.append(f"nft table {table}")
    return removed


def in_netns(ns: str, argv: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """argv run inside namespace `ns`, with /etc/netns/NS/hosts as its /etc/hosts."""
    return ("ip", "netns", "exec", ns, *argv)


def nft(ns: str, script: str) -> None:
    """Apply an nft script inside namespace `ns` (atomically: one transaction)."""
    run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=script)
