"""Panel settings from the environment (and `.env`), read the same way as the stack's services.

Defaults are the stack's own service list (`stack.services.default_settings`), so the panel,
the load test and the CLI cannot disagree about where the default stack listens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.settings import ConfigError, env_float, env_list, load_dotenv, parse_substations
from stack.services import default_settings


@dataclass(frozen=True)
class PanelConfig:
    node_urls: list[str]
    balancer_url: str
    substations: list[tuple[str, str]]
    admin_token: str | None
    refresh_s: float = 1.5
    timeout_s: float = 2.0
    prometheus_url: str | None = None  # None: no history, live values only
    page_size: int = 50  # keys per page of a node's store table

    @property
    def node_names(self) -> list[str]:
        """node1..nodeN: NODE_ID i is node{i+1}, as in the stack's service names."""
        return [f"node{i + 1}" for i in range(len(self.node_urls))]


def _one_url(name: str, default: str) -> str:
    urls = env_list(name, default)
    if len(urls) != 1:
        raise ConfigError(f"{name} must be one URL")
    return urls[0].rstrip("/")


def load_config() -> PanelConfig:
    """NODE_URLS, BALANCER_URL, SUBSTATIONS, PROMETHEUS_URL, ADMIN_TOKEN (+ PANEL_REFRESH_S,
    PANEL_TIMEOUT_S, PANEL_PAGE_SIZE). PROMETHEUS_URL=off turns the history charts off."""
    load_dotenv()
    defaults = default_settings()
    node_urls = [url.rstrip("/") for url in env_list("NODE_URLS", defaults["NODE_URLS"])]
    if not node_urls:
        raise ConfigError("NODE_URLS must list at least one node")
    prometheus = os.environ.get("PROMETHEUS_URL", defaults["PROMETHEUS_URL"]).strip()
    return PanelConfig(
        node_urls=node_urls,
        balancer_url=_one_url("BALANCER_URL", defaults["BALANCER_URL"]),
        substations=list(parse_substations(env_list("SUBSTATIONS",
                                                    defaults["SUBSTATIONS"])).items()),
        admin_token=os.environ.get("ADMIN_TOKEN") or None,
        refresh_s=env_float("PANEL_REFRESH_S", 1.5, minimum=0.5),
        timeout_s=env_float("PANEL_TIMEOUT_S", 2.0, minimum=0.1),
        prometheus_url=None if prometheus.lower() in ("", "off", "none") else
        prometheus.rstrip("/"),
        page_size=int(env_float("PANEL_PAGE_SIZE", 50, minimum=1)),
    )
