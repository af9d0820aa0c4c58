"""Settings of `make up`, read from the environment (and `.env`) in one place.

GRIDCLOCK_PORT_OFFSET shifts every local port (5001 -> 5001 + offset) so a second stack, or the
test of `make up`, can run beside the first; GRIDCLOCK_DATA_DIR and GRIDCLOCK_RUN_DIR move the
Redis/Prometheus data and the generated configs, logs and supervisor socket.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.settings import (
    DOTENV,
    REPO_ROOT,
    TOKEN_KEYS,
    ConfigError,
    ensure_dotenv,
    env_int,
    env_str,
    load_dotenv,
)
from stack.services import TUNABLES


@dataclass(frozen=True)
class StackSettings:
    port_offset: int
    data_dir: Path
    run_dir: Path
    cluster_token: str
    admin_token: str
    tunables: dict[str, str]
    wrote_dotenv: bool = False

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "supervisor.sock"


def _dir(name: str, default: str) -> Path:
    path = Path(os.environ.get(name) or default)
    return path if path.is_absolute() else (REPO_ROOT / path)


def run_dir() -> Path:
    """Where the running stack keeps its socket, configs and logs (for ps/stop/start/kill)."""
    load_dotenv()
    return _dir("GRIDCLOCK_RUN_DIR", "run")


def load_settings(write_dotenv: bool = False) -> StackSettings:
    """Tokens from the environment, else from `.env` (written with random ones when missing)."""
    wrote = False
    if write_dotenv and not all(os.environ.get(key) for key in TOKEN_KEYS):
        wrote = ensure_dotenv()
    load_dotenv()
    try:
        cluster_token, admin_token = (env_str(key) for key in TOKEN_KEYS)
    except ConfigError as exc:
        raise ConfigError(f"{exc}: put it in {DOTENV} or the environment") from exc
    return StackSettings(
        port_offset=env_int("GRIDCLOCK_PORT_OFFSET", 0),
        data_dir=_dir("GRIDCLOCK_DATA_DIR", "data"),
        run_dir=run_dir(),
        cluster_token=cluster_token,
        admin_token=admin_token,
        tunables={key: os.environ.get(key) or default for key, default in TUNABLES.items()},
        wrote_dotenv=wrote,
    )
