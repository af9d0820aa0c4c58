"""Grid Lua scripts: each is lib.lua (reaping, retry-after) followed by the script itself,
so the reaping rule exists once and every script, the balancer's included, applies it."""

from __future__ import annotations

from pathlib import Path

import redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).parent / "lua"


def grid_script(client: redis.Redis, path: Path) -> Script:
    """Register `path` with the grid library prepended (redis-py reloads it after NOSCRIPT)."""
    source = (LUA_DIR / "lib.lua").read_text() + "\n" + path.read_text()
    return client.register_script(source)


def substation_script(client: redis.Redis, name: str) -> Script:
    return grid_script(client, LUA_DIR / f"{name}.lua")
