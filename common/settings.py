"""Environment and `.env` reading: the one place services turn configuration text into values."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOTENV = REPO_ROOT / ".env"
TOKEN_KEYS = ("CLUSTER_TOKEN", "ADMIN_TOKEN")


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
