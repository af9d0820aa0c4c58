"""The hosts layout of `make up-hosts` is the service list of `make up`, moved onto hosts:
same programs, flags and environment keys; names instead of 127.0.0.1; a KV node and its Redis
on one host, every other service on its own. Pure: no root needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from stack import netns
from stack.config import StackSettings
from stack.hosts import DEFAULT_PREFIX, DEFAULT_SUBNET, host_of, plan, up_hosts
from stack.services import NODE_REDIS, NODES, SPEC_PORTS, TUNABLES, Layout, services


def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(port_offset=0, data_dir=tmp_path / "data", run_dir=tmp_path / "run",
                         cluster_token="c", admin_token="a", tunables=dict(TUNABLES))


def test_hosts_plan_has_every_service_with_the_same_program_flags_and_env_keys(tmp_path):
    network, layout, svcs = plan(settings(tmp_path), DEFAULT_PREFIX, DEFAULT_SUBNET)
    local = {svc.name: svc for svc in services(Layout(ports=SPEC_PORTS, cluster_token="c",
                                                      admin_token="a"))}
    hosts = {svc.name: svc for svc in svcs}
    assert set(hosts) == set(local)
    for name, svc in hosts.items():
        ns = network.netns(host_of(name))
        assert svc.argv[:4] == ("ip", "netns", "exec", ns), name
        inner, mine = svc.argv[4:], local[name].argv
        assert len(inner) == len(mine) and Path(inner[0]).name == Path(mine[0]).name, name
        assert set(svc.env) == set(local[name].env), name
        assert svc.depends_on == local[name].depends_on and svc.port == local[name].port


def test_services_reach_each_other_by_name_never_by_loopback(tmp_path):
    _, layout, svcs = plan(settings(tmp_path), DEFAULT_PREFIX, DEFAULT_SUBNET)
    for svc in svcs:
        text = " ".join([*svc.argv, *svc.env.values()])
        assert "127.0.0.1" not in text and "localhost" not in text, svc.name
    env = {svc.name: svc.env for svc in svcs}
    assert env["node1"]["NODE_URLS"] == "http://node1:5001,http://node2:5002,http://node3:5003"
    assert env["node2"]["REDIS_URL"] == "redis://redis-node2:6382/0"
    assert env["balancer"]["SUBSTATIONS"].startswith("substation1=http://substation1:8001,")


def test_each_service_has_its_own_host_except_a_node_and_its_redis(tmp_path):
    network, layout, svcs = plan(settings(tmp_path), DEFAULT_PREFIX, DEFAULT_SUBNET)
    for node, redis in zip(NODES, NODE_REDIS, strict=True):
        assert layout.address(node) == layout.address(redis)
    others = [svc.name for svc in svcs if svc.name not in NODE_REDIS]
    assert len({layout.address(name) for name in others}) == len(others)
    subnet = ipaddress.ip_network(DEFAULT_SUBNET)
    addresses = [ipaddress.ip_address(a) for a in network.addresses.values()]
    assert all(a in subnet for a in addresses) and len(set(addresses)) == len(network.hosts)
    assert network.bridge_address == "10.211.0.1"
    assert ipaddress.ip_address(network.bridge_address) not in addresses
    assert all(len(network.veth(h)) <= 15 for h in network.hosts)  # IFNAMSIZ
    assert all(network.netns(h).startswith(DEFAULT_PREFIX) for h in network.hosts)


def test_a_left_out_service_has_no_host(tmp_path):
    network, _, svcs = plan(settings(tmp_path), "gt-", "10.211.201.0/24", ("panel",))
    assert "panel" not in network.hosts and "panel" not in {s.name for s in svcs}


@pytest.mark.parametrize("prefix", ["", "gc", "GC-", "toolong-", "1c-", "gc_"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(netns.NetnsError):
        netns.check_prefix(prefix)


@pytest.mark.parametrize("subnet", ["8.8.8.0/24", "10.211.0.0/29", "fd00::/64"])
def test_subnets_must_be_private_ipv4_with_room(tmp_path, subnet):
    with pytest.raises((netns.NetnsError, ValueError)):
        plan(settings(tmp_path), "gt-", subnet)


def test_without_root_it_says_so_in_one_line_and_fails(monkeypatch, capsys):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert up_hosts() != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err and err.startswith("make up-hosts:")
