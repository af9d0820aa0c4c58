"""Load a package's Lua scripts once, registered so redis-py reloads them after a Redis restart."""

from __future__ import annotations

from importlib import resources

import redis
from redis.commands.core import Script


def load_scripts(client: redis.Redis, package: str, *names: str,
                 prelude: str | None = None) -> dict[str, Script]:
    """{name: Script} for `<package>/lua/<name>.lua`, each with `<package>/lua/<prelude>.lua`
    (a library of local functions) prepended when `prelude` is given."""
    folder = resources.files(package) / "lua"
    head = (folder / f"{prelude}.lua").read_text() + "\n" if prelude else ""
    return {name: client.register_script(head + (folder / f"{name}.lua").read_text())
            for name in names}
