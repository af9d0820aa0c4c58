"""Panel fixtures: the session's local stack, its panel process and the panel's environment."""

from __future__ import annotations

import pytest

from panel.api import Balancer, KvNode


@pytest.fixture(scope="session")
def panel_url(stack) -> str:
    """The stack's own panel service (same definition as `make up`), started on first use."""
    proc = stack.procs.get("panel")
    if proc is None or not proc.running:
        stack.start_service("panel", timeout=60)
    return stack.urls["panel"]


@pytest.fixture
def panel_env(stack, monkeypatch) -> dict[str, str]:
    """The panel's environment for in-process use (AppTest, panel.config)."""
    env = {key: stack.env_for("panel")[key]
           for key in ("NODE_URLS", "BALANCER_URL", "SUBSTATIONS", "ADMIN_TOKEN")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def kv_nodes(stack) -> list[KvNode]:
    return [KvNode(i, url, 2.0, stack.admin_token) for i, url in enumerate(stack.node_urls)]


@pytest.fixture
def balancer(stack) -> Balancer:
    return Balancer(stack.urls["balancer"], 2.0, stack.admin_token)
