"""Every service of the stack, defined once.

`make up` (supervisord), the test suite's LocalStack and the checked-in compose.yaml and
prometheus/prometheus.yml are all derived from `services(layout)`. A Layout says where things
are: 127.0.0.1 and (possibly shifted) spec ports locally, service hostnames in containers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.settings import REPO_ROOT

ALERT_RULES = REPO_ROOT / "prometheus" / "alerts.yml"
N_NODES = 3
# (name, capacity kW, default charge duration s): deliberately unequal capacities.
SUBSTATIONS = (("substation1", 150, 60), ("substation2", 100, 90), ("substation3", 50, 120))


def node_names(n_nodes: int = N_NODES) -> tuple[str, ...]:
    """node1..nodeN: the KV nodes of an N-node cluster (N is fixed for a cluster's lifetime)."""
    return tuple(f"node{i + 1}" for i in range(n_nodes))


def node_redis_names(n_nodes: int = N_NODES) -> tuple[str, ...]:
    return tuple(f"redis-{node}" for node in node_names(n_nodes))


NODES = node_names()
NODE_REDIS = node_redis_names()
GRID_REDIS = "redis-grid"
SUBSTATION_NAMES = tuple(name for name, _, _ in SUBSTATIONS)

# The spec's ports. Redis ports are local only: compose keeps Redis unpublished on 6379.
SPEC_PORTS: dict[str, int] = {
    **{redis: 6381 + i for i, redis in enumerate(NODE_REDIS)},
    GRID_REDIS: 6390,
    **{node: 5001 + i for i, node in enumerate(NODES)},
    **{name: 8001 + i for i, name in enumerate(SUBSTATION_NAMES)},
    "balancer": 8080,
    "panel": 8501,
    "prometheus": 9090,
}
CONTAINER_PORTS = {name: 6379 if name.startswith("redis-") else port
                   for name, port in SPEC_PORTS.items()}

# Settings a user may change per run (environment or .env); the values are the defaults.
TUNABLES: dict[str, str] = {
    "WEB_CONCURRENCY": "2",
    "GUNICORN_THREADS": "8",
    "LOG_LEVEL": "info",
    "CONTEXT_WAIT_S": "2",
    "ROUTING_STRATEGY": "least-utilization",
    "POLL_INTERVAL_S": "3",
    "HEALTH_INTERVAL_S": "1",
}
GUNICORN_TUNABLES = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "LOG_LEVEL")

# Service kinds; health is a Redis PING for "redis", else an HTTP GET of `health_path`.
REDIS, GUNICORN, STREAMLIT, PROMETHEUS = "redis", "gunicorn", "streamlit", "prometheus"


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    argv: tuple[str, ...]
    env: dict[str, str]
    port: int
    depends_on: tuple[str, ...] = ()
    health_path: str | None = None
    data_dir: str | None = None
    metrics: bool = False  # scraped by Prometheus

    @property
    def python(self) -> bool:
        return self.kind in (GUNICORN, STREAMLIT)


@dataclass(frozen=True)
class Layout:
    """Where each service listens and keeps data, and how secrets and tunables are written."""

    ports: Mapping[str, int]
    cluster_token: str
    admin_token: str
    data_dir: str = "data"  # parent of one directory per service
    prometheus_config: str = "prometheus.yml"
    tunables: Mapping[str, str] = field(default_factory=lambda: dict(TUNABLES))
    in_containers: bool = False
    python: str = sys.executable
    redis_server: str = "redis-server"
    prometheus: str = "prometheus"
    hosts: Mapping[str, str] = field(default_factory=dict)  # per-service hostname overrides

    def host(self, name: str) -> str:
        return self.hosts.get(name) or (name if self.in_containers else "127.0.0.1")

    @property
    def bind_host(self) -> str:
        return "0.0.0.0" if self.in_containers else "127.0.0.1"

    def url(self, name: str) -> str:
        return f"http://{self.host(name)}:{self.ports[name]}"

    def redis_url(self, name: str) -> str:
        return f"redis://{self.host(name)}:{self.ports[name]}/0"

    def data_path(self, name: str) -> str:
        if self.in_containers:  # the volume's mount point inside the official image
            return "/prometheus" if name == "prometheus" else "/data"
        return f"{self.data_dir}/{name}"

    def tunable(self, key: str) -> str:
        return self.tunables[key]


def compose_layout() -> Layout:
    """The layout inside compose: hostnames, container ports, secrets and tunables from .env."""
    tokens = {key: f"${{{key}:?{key} is not set: run `make up` once or write it to .env}}"
              for key in ("CLUSTER_TOKEN", "ADMIN_TOKEN")}
    return Layout(
        ports=CONTAINER_PORTS,
        cluster_token=tokens["CLUSTER_TOKEN"],
        admin_token=tokens["ADMIN_TOKEN"],
        prometheus_config="/etc/prometheus/prometheus.yml",
        tunables={key: f"${{{key}:-{default}}}" for key, default in TUNABLES.items()},
        in_containers=True,
        python="python",
        redis_server="redis-server",
        prometheus="/bin/prometheus",
    )


def default_layout() -> Layout:
    """The stack as `make up` runs it by default: spec ports on 127.0.0.1 (no secrets)."""
    return Layout(ports=SPEC_PORTS, cluster_token="", admin_token="")


def default_urls() -> dict[str, str]:
    """Base URL of every HTTP service of the default local stack, by service name: the one
    source of the default URLs of the panel, the load test and the CLI."""
    layout = default_layout()
    return {name: layout.url(name) for name in SPEC_PORTS if not name.startswith("redis-")}


def default_settings() -> dict[str, str]:
    """NODE_URLS, BALANCER_URL, SUBSTATIONS and PROMETHEUS_URL of the default local stack."""
    layout = default_layout()
    return {"NODE_URLS": ",".join(layout.url(node) for node in NODES),
            "BALANCER_URL": layout.url("balancer"),
            "SUBSTATIONS": substations_setting(layout),
            "PROMETHEUS_URL": layout.url("prometheus")}


def substations_setting(layout: Layout) -> str:
    """The SUBSTATIONS value shared by balancer and panel: `name=url,...`."""
    return ",".join(f"{name}={layout.url(name)}" for name in SUBSTATION_NAMES)


def _redis(layout: Layout, name: str, appendfsync: str) -> Service:
    argv = (layout.redis_server, "--port", str(layout.ports[name]), "--bind", layout.bind_host,
            "--dir", layout.data_path(name), "--appendonly", "yes", "--appendfsync", appendfsync,
            "--save", "", "--protected-mode", "no")
    return Service(name, REDIS, argv, {}, layout.ports[name], data_dir=layout.data_path(name))


def _gunicorn(layout: Layout, name: str, app: str, env: dict[str, str],
              depends_on: tuple[str, ...]) -> Service:
    argv = (layout.python, "-m", "gunicorn", "-c", "python:common.gunicorn_conf", app)
    env = {**env, "PORT": str(layout.ports[name]), "BIND_HOST": layout.bind_host,
           "PYTHONUNBUFFERED": "1", **{k: layout.tunable(k) for k in GUNICORN_TUNABLES}}
    return Service(name, GUNICORN, argv, env, layout.ports[name], depends_on,
                   health_path="/health", metrics=True)


def services(layout: Layout, n_nodes: int = N_NODES) -> list[Service]:
    """All services in start order: Redis, KV nodes, substations, balancer, panel, Prometheus.

    `layout.ports` must name every node of the `n_nodes` (and its Redis).
    """
    nodes, node_redis = node_names(n_nodes), node_redis_names(n_nodes)
    out = [_redis(layout, name, "always") for name in node_redis]
    # Grid sessions expire within minutes anyway: losing the last second of them is acceptable.
    out.append(_redis(layout, GRID_REDIS, "everysec"))
    node_urls = ",".join(layout.url(node) for node in nodes)
    for i, (node, redis) in enumerate(zip(nodes, node_redis, strict=True)):
        env = {"NODE_ID": str(i), "NODE_URLS": node_urls, "REDIS_URL": layout.redis_url(redis),
               "CLUSTER_TOKEN": layout.cluster_token, "ADMIN_TOKEN": layout.admin_token,
               "CONTEXT_WAIT_S": layout.tunable("CONTEXT_WAIT_S")}
        out.append(_gunicorn(layout, node, "nodes.app:create_app()", env, (redis,)))
    grid_redis_url = layout.redis_url(GRID_REDIS)
    for name, capacity_kw, duration_s in SUBSTATIONS:
        env = {"SUBSTATION_NAME": name, "CAPACITY_KW": str(capacity_kw),
               "CHARGE_DURATION_S": str(duration_s), "REDIS_URL": grid_redis_url}
        out.append(_gunicorn(layout, name, "substations.app:create_app()", env, (GRID_REDIS,)))
    env = {"SUBSTATIONS": substations_setting(layout), "REDIS_URL": grid_redis_url,
           "ROUTING_STRATEGY": layout.tunable("ROUTING_STRATEGY"),
           "ADMIN_TOKEN": layout.admin_token,
           "POLL_INTERVAL_S": layout.tunable("POLL_INTERVAL_S"),
           "HEALTH_INTERVAL_S": layout.tunable("HEALTH_INTERVAL_S")}
    out.append(_gunicorn(layout, "balancer", "balancer.app:create_app()", env,
                         (GRID_REDIS, *SUBSTATION_NAMES)))
    port = layout.ports["panel"]
    argv = (layout.python, "-m", "streamlit", "run", "panel/server.py", "--server.port", str(port),
            "--server.address", layout.bind_host, "--server.headless", "true",
            "--browser.gatherUsageStats", "false")
    env = {"NODE_URLS": node_urls, "BALANCER_URL": layout.url("balancer"),
           "SUBSTATIONS": substations_setting(layout), "ADMIN_TOKEN": layout.admin_token,
           "PROMETHEUS_URL": layout.url("prometheus"), "PYTHONUNBUFFERED": "1"}
    out.append(Service("panel", STREAMLIT, argv, env, port, (*nodes, "balancer"),
                       health_path="/health", metrics=True))
    port = layout.ports["prometheus"]
    argv = (layout.prometheus, f"--config.file={layout.prometheus_config}",
            f"--storage.tsdb.path={layout.data_path('prometheus')}",
            f"--web.listen-address={layout.bind_host}:{port}")
    out.append(Service("prometheus", PROMETHEUS, argv, {}, port, health_path="/-/ready",
                       data_dir=layout.data_path("prometheus"), metrics=True))
    return out


def by_name(layout: Layout) -> dict[str, Service]:
    return {svc.name: svc for svc in services(layout)}


# Prometheus job per kind of service; `instance` is the service name in both layouts, so
# dashboards and alerts read the same locally and in compose.
JOBS = (("kv-node", NODES), ("substation", SUBSTATION_NAMES), ("balancer", ("balancer",)),
        ("panel", ("panel",)), ("prometheus", ("prometheus",)))


def prometheus_config(layout: Layout, rule_files: list[str],
                      scrape_interval: str = "5s") -> dict[str, Any]:
    """Scrape config for every service that serves /metrics."""
    scrape_configs = [
        {"job_name": job,
         "static_configs": [
             {"targets": [f"{layout.host(m)}:{layout.ports[m]}"], "labels": {"instance": m}}
             for m in members]}
        for job, members in JOBS
    ]
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rule_files,
        "scrape_configs": scrape_configs,
    }


def write_local_prometheus_config(layout: Layout, scrape_interval: str = "5s") -> None:
    """prometheus.yml of a Prometheus on this machine, with the repository's alert rules."""
    config = prometheus_config(layout, [str(ALERT_RULES)], scrape_interval)
    Path(layout.prometheus_config).write_text(yaml.safe_dump(config, sort_keys=False))
