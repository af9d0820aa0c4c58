"""Balancer settings, read from the environment once at startup."""

from __future__ import annotations

from dataclasses import dataclass

from balancer.strategies import DEFAULT, NAMES
from common.settings import (  # parse_substations: the one SUBSTATIONS parser, re-exported
    ConfigError,
    env_float,
    env_int,
    env_list,
    env_str,
    load_dotenv,
    parse_substations,
)
from grid.wire import is_valid_name


@dataclass(frozen=True)
class Config:
    substations: dict[str, str]  # name -> base URL, sorted by name
    redis_url: str
    strategy: str
    admin_token: str
    poll_interval_s: float
    health_interval_s: float
    upstream_timeout_s: float  # per try
    eject_after: int  # consecutive request-path failures before ejection
    reservation_ttl_ms: int


def load_config() -> Config:
    load_dotenv()
    strategy = env_str("ROUTING_STRATEGY", DEFAULT)
    if strategy not in NAMES:
        raise ConfigError(f"ROUTING_STRATEGY={strategy!r}: one of {', '.join(NAMES)}")
    timeout = env_float("UPSTREAM_TIMEOUT_S", 1.0, minimum=0.01)
    subs = parse_substations(env_list("SUBSTATIONS"))
    if any(not is_valid_name(name) for name in subs):
        raise ConfigError("SUBSTATIONS: no substation may be called 'queue'")
    return Config(
        substations=subs,
        redis_url=env_str("REDIS_URL"),
        strategy=strategy,
        admin_token=env_str("ADMIN_TOKEN"),
        poll_interval_s=env_float("POLL_INTERVAL_S", 3.0, minimum=0.05),
        health_interval_s=env_float("HEALTH_INTERVAL_S", 1.0, minimum=0.05),
        upstream_timeout_s=timeout,
        eject_after=env_int("EJECT_AFTER", 3, minimum=1),
        # outlives every try of one request, then expires if the balancer died mid-request
        reservation_ttl_ms=round((timeout * len(subs) + 2) * 1000),
    )
