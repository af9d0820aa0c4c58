"""Substation settings, read from the environment once at startup."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ConfigError, env_float, env_str, load_dotenv
from substations.wire import NAME_RE


@dataclass(frozen=True)
class Config:
    name: str
    capacity_w: int
    charge_duration_s: float
    redis_url: str


def load_config() -> Config:
    load_dotenv()
    name = env_str("SUBSTATION_NAME")
    if not NAME_RE.match(name):
        raise ConfigError(f"SUBSTATION_NAME={name!r}: use 1-48 of A-Z a-z 0-9 _ -")
    capacity_kw = env_float("CAPACITY_KW", 100.0, minimum=0.001)
    duration_s = env_float("CHARGE_DURATION_S", 60.0, minimum=0.001)
    return Config(name, round(capacity_kw * 1000), duration_s, env_str("REDIS_URL"))
