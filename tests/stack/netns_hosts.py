"""What every network-namespace test needs: root and the tools (skip locally, fail in CI), and
a fresh name prefix and subnet per test, so host tests never meet a developer's `make up-hosts`
(gc-, 10.211.0.0/24) nor another test session running at the same time."""

from __future__ import annotations

import random

import pytest

from stack import netns

from ..conftest import IN_CI, require_tool


def require_root(what: str) -> None:
    """`what` (e.g. "make chaos") runs hosts in network namespaces: it needs root, iproute2
    and nftables."""
    require_tool("ip", f"{what} needs iproute2")
    require_tool("nft", f"{what} needs nftables")
    why = netns.missing_requirements()
    if why:
        if IN_CI:
            pytest.fail(f"{what} cannot run in CI: {why}")
        pytest.skip(why)


def fresh_network(tag: str) -> tuple[str, str]:
    """(prefix, subnet): `<tag><4 hex>-` unused by any namespace or link, and a 10.211.X.0/24
    with X in 100..250 that no address or route on this machine mentions."""
    rng = random.Random()
    used = netns.run("ip", "-o", "addr", check=False) + netns.run("ip", "route", check=False)
    for _ in range(100):
        prefix = f"{tag}{rng.randrange(16**4):04x}-"
        third = rng.randrange(100, 251)
        if f"10.211.{third}." in used or any(netns.leftovers(prefix).values()):
            continue
        return prefix, f"10.211.{third}.0/24"
    raise RuntimeError("no free prefix and subnet for a host test")
