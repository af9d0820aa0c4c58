"""Load a package's Lua scripts once, registered so redis-py reloads them after a Redis restart."""

from __future__ import annotations

from importlib import resources

import redis
from redis.commands.core import Script


def load_scripts(client: redis.Redis, package: str, *names: str) -> dict[str, Script]:
    """{name: Script} for `<package>/lua/<name>.lua`."""
    folder = resources.files(package) / "lua"
    return {name: client.register_script((folder / f"{name}.lua").read_text()) for name in names}
