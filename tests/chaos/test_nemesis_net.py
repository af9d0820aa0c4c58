"""The nemesis' network faults on real namespaces (no GridClock services): a one-way partition
drops one direction only (seen with UDP, which has no handshake), a two-way one both, an
isolated node loses its peers but not the root namespace, and healing removes every rule.
Root only: skipped locally without it, failed in CI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.history import Recorder
from chaos.nemesis import Nemesis, Planned
from stack import netns

from ..conftest import IN_CI, require_tool
from ..stack.netns_hosts import fresh_network

HOSTS = ("node1", "node2", "node3")
PORT = 7000

UDP_RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d)); s.settimeout(1.5)
print("ready", flush=True)
try:
    s.recvfrom(100); print("got", flush=True)
except socket.timeout:
    print("none", flush=True)
"""
UDP_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    try:
        s.sendto(b"x", (sys.argv[1], %d))
    except OSError:  # EPERM: dropped by the sender's own output chain
        pass
"""
TCP_SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
"""
TCP_PROBE = """
import socket, sys
s = socket.socket(); s.settimeout(1.0)
sys.exit(0 if s.connect_ex((sys.argv[1], %d)) == 0 else 1)
"""


class FakeStack:
    """What the nemesis needs of a stack for network faults: addresses and namespaces."""

    def __init__(self, network: netns.Network):
        self.network = network
        self.rows = {h: {} for h in HOSTS}

    def address(self, host: str) -> str:
        return self.network.addresses[host]

    def netns(self, host: str) -> str:
        return self.network.netns(host)

    @property
    def namespaces(self) -> list[str]:
        return [self.netns(h) for h in HOSTS]

    def signal(self, name: str, sig: int) -> None:  # no processes here: nothing to resume
        return None

    def start_service(self, name: str) -> None:
        return None


@pytest.fixture
def net(tmp_path: Path) -> Iterator[netns.Network]:
    require_tool("ip", "needs iproute2")
    require_tool("nft", "needs nftables")
    why = netns.missing_requirements()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    network = netns.Network(*fresh_network("n"), HOSTS)
    servers = []
    try:
        network.create({h: h for h in HOSTS})
        for h in HOSTS:
            servers.append(subprocess.Popen(netns.in_netns(network.netns(h), (
                sys.executable, "-c", TCP_SERVER % PORT))))
        yield network
    finally:
        for server in servers:
            server.kill()
            server.wait(5)
        network.destroy()
        assert not any(netns.leftovers(network.prefix).values())


def udp_reaches(network: netns.Network, src: str, dst: str) -> bool:
    receiver = subprocess.Popen(netns.in_netns(network.netns(dst), (
        sys.executable, "-c", UDP_RECEIVER % PORT)), stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        subprocess.run(netns.in_netns(network.netns(src), (
            sys.executable, "-c", UDP_SENDER % PORT, network.addresses[dst])), check=True,
            timeout=10)
        return receiver.stdout.readline().strip() == "got"
    finally:
        receiver.kill()
        receiver.wait(5)


def tcp_reaches(network: netns.Network, src: str | None, dst: str) -> bool:
    argv = (sys.executable, "-c", TCP_PROBE % PORT, network.addresses[dst])
    if src is not None:
        argv = netns.in_netns(network.netns(src), argv)
    return subprocess.run(argv, timeout=10).returncode == 0


def nemesis(network: netns.Network, tmp_path: Path) -> Nemesis:
    return Nemesis(FakeStack(network), Recorder(tmp_path / "history.jsonl"), [])


def test_one_way_partition_drops_one_direction_and_heals(net, tmp_path):
    nem = nemesis(net, tmp_path)
    assert udp_reaches(net, "node1", "node2") and udp_reaches(net, "node2", "node1")
    fault = Planned(0, "partition-one-way", {"from": "node1", "to": "node2"}, 1, id=1)
    nem._inject(fault)
    assert not udp_reaches(net, "node1", "node2")
    assert udp_reaches(net, "node2", "node1")
    assert udp_reaches(net, "node1", "node3") and tcp_reaches(net, "node3", "node2")
    nem._heal(fault)
    assert udp_reaches(net, "node1", "node2") and tcp_reaches(net, "node1", "node2")
    kinds = [(e["f"], e["value"]["kind"]) for e in nem.recorder.entries]
    assert kinds == [("fault", "partition-one-way"), ("heal", "partition-one-way")]


def test_two_way_partition_and_isolation(net, tmp_path):
    nem = nemesis(net, tmp_path)
    fault = Planned(0, "partition-two-way", {"from": "node2", "to": "node3"}, 1, id=1)
    nem._inject(fault)
    assert not tcp_reaches(net, "node2", "node3") and not tcp_reaches(net, "node3", "node2")
    assert tcp_reaches(net, "node1", "node3")
    nem._heal(fault)
    isolate = Planned(0, "isolate-node", {"node": "node1"}, 1, id=2)
    nem._inject(isolate)
    assert not tcp_reaches(net, "node1", "node2") and not tcp_reaches(net, "node3", "node1")
    assert tcp_reaches(net, None, "node1")  # clients (root namespace) still reach it
    assert tcp_reaches(net, "node2", "node3")
    nem.heal_everything()
    assert all(tcp_reaches(net, a, b) for a in HOSTS for b in HOSTS if a != b)
    for h in HOSTS:
        tables = netns.run("ip", "netns", "exec", net.netns(h), "nft", "list", "tables")
        assert "chaos" not in tables
