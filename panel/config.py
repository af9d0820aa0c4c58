"""Panel settings from the environment (and `.env`), read the same way as the stack's services."""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.settings import ConfigError, env_float, env_list, load_dotenv

DEFAULT_NODE_URLS = "http://127.0.0.1:5001,http://127.0.0.1:5002,http://127.0.0.1:5003"
DEFAULT_BALANCER_URL = "http://127.0.0.1:8080"
DEFAULT_SUBSTATIONS = ("substation1=http://127.0.0.1:8001,substation2=http://127.0.0.1:8002,"
                       "substation3=http://127.0.0.1:8003")


@dataclass(frozen=True)
class PanelConfig:
    node_urls: list[str]
    balancer_url: str
    substations: list[tuple[str, str]]
    admin_token: str | None
    refresh_s: float = 1.5
    timeout_s: float = 2.0

    @property
    def node_names(self) -> list[str]:
        """node1..nodeN: NODE_ID i is node{i+1}, as in the stack's service names."""
        return [f"node{i + 1}" for i in range(len(self.node_urls))]


def parse_substations(items: list[str]) -> list[tuple[str, str]]:
    """`name=url` items (the balancer's SUBSTATIONS format) as (name, url) pairs."""
    pairs = []
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ConfigError(f"SUBSTATIONS item {item!r} is not name=url")
        pairs.append((name.strip(), url.strip().rstrip("/")))
    return pairs


def load_config() -> PanelConfig:
    """NODE_URLS, BALANCER_URL, SUBSTATIONS, ADMIN_TOKEN (+ PANEL_REFRESH_S, PANEL_TIMEOUT_S)."""
    load_dotenv()
    node_urls = [url.rstrip("/") for url in env_list("NODE_URLS", DEFAULT_NODE_URLS)]
    if not node_urls:
        raise ConfigError("NODE_URLS must list at least one node")
    balancer = env_list("BALANCER_URL", DEFAULT_BALANCER_URL)
    if len(balancer) != 1:
        raise ConfigError("BALANCER_URL must be one URL")
    return PanelConfig(
        node_urls=node_urls,
        balancer_url=balancer[0].rstrip("/"),
        substations=parse_substations(env_list("SUBSTATIONS", DEFAULT_SUBSTATIONS)),
        admin_token=os.environ.get("ADMIN_TOKEN") or None,
        refresh_s=env_float("PANEL_REFRESH_S", 1.5, minimum=0.5),
        timeout_s=env_float("PANEL_TIMEOUT_S", 2.0, minimum=0.1),
    )
