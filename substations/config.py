"""Substation settings, read from the environment once at startup."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ConfigError, env_float, env_str, load_dotenv
from grid.wire import is_valid_name


@dataclass(frozen=True)
class Config:
    name: str
    capacity_w: int
    charge_duration_s: float
    redis_url: str
    reap_interval_s: float = 0.2  # energy targets and expiries end within one tick
    # Test-only: sleep before the admission runs / before its answer is sent, to provoke a
    # balancer timeout on either side of the admission (tests/grid/test_grid_late.py).
    test_admit_delay_s: float = 0.0
    test_reply_delay_s: float = 0.0


def load_config() -> Config:
    load_dotenv()
    name = env_str("SUBSTATION_NAME")
    if not is_valid_name(name):
        raise ConfigError(f"SUBSTATION_NAME={name!r}: use 1-48 of A-Z a-z 0-9 _ -, not 'queue'")
    capacity_kw = env_float("CAPACITY_KW", 100.0, minimum=0.001)
    duration_s = env_float("CHARGE_DURATION_S", 60.0, minimum=0.001)
    return Config(name, round(capacity_kw * 1000), duration_s, env_str("REDIS_URL"),
                  env_float("REAP_INTERVAL_S", 0.2, minimum=0.01),
                  env_float("TEST_ADMIT_DELAY_S", 0.0), env_float("TEST_REPLY_DELAY_S", 0.0))
