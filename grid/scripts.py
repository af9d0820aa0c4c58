"""The grid's Lua scripts, each with lib.lua prepended, through the one loader (common/lua.py)."""

from __future__ import annotations

import redis
from redis.commands.core import Script

from common.lua import load_scripts


def grid_scripts(client: redis.Redis, *names: str) -> dict[str, Script]:
    return load_scripts(client, "grid", *names, prelude="lib")
