"""Environment and `.env` reading: the one place services turn configuration text into values."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
DOTENV = REPO_ROOT / ".env"
TOKEN_KEYS = ("CLUSTER_TOKEN", "ADMIN_TOKEN")
# A substation's name: it appears in metric labels, Redis keys and URLs.
SUBSTATION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; raised at startup, never per request."""


def load_dotenv(path: Path = DOTENV) -> None:
    """Copy KEY=VALUE lines of `path` into os.environ without overriding what is already set."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def ensure_dotenv(path: Path = DOTENV) -> bool:
    """Write random tokens to `path` when it is missing; True when a file was written."""
    if path.exists():
        return False
    lines = [f"{key}={secrets.token_urlsafe(24)}" for key in TOKEN_KEYS]
    path.write_text("# written by `make up`; keep private\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)
    return True


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} must be set")
    return value


def _env_number(name: str, default, minimum, cast, kind: str):
    raw = os.environ.get(name)
    try:
        value = default if raw in (None, "") else cast(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not {kind}") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    return _env_number(name, default, minimum, int, "an integer")


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    return _env_number(name, default, minimum, float, "a number")


def env_list(name: str, default: str = "") -> list[str]:
    """Comma-separated list, blanks dropped."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def parse_substations(items: list[str]) -> dict[str, str]:
    """The SUBSTATIONS setting (`name=url` items) as {name: base URL} sorted by name.

    The one parser of that setting (balancer and panel): names match SUBSTATION_NAME_RE, URLs
    are http(s) with a host, no name twice, at least one item.
    """
    found: dict[str, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        parsed = urlparse(url)
        if (not sep or not SUBSTATION_NAME_RE.match(name)
                or parsed.scheme not in ("http", "https") or not parsed.netloc):
            raise ConfigError(f"SUBSTATIONS item {item!r} is not name=http://host:port")
        if name in found:
            raise ConfigError(f"SUBSTATIONS names {name!r} twice")
        found[name] = url
    if not found:
        raise ConfigError("SUBSTATIONS must list at least one name=url")
    return dict(sorted(found.items()))
