"""compose.yaml and prometheus/prometheus.yml cannot drift from stack/services.py.

Both are generated (`python -m stack generate`); these tests fail when the checked-in files
differ from what the service list gives, and check the properties the containers rely on.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from common.settings import REPO_ROOT
from stack.compose import COMPOSE_FILE, PROMETHEUS_FILE, generated_files
from stack.services import (
    GUNICORN,
    REDIS,
    SPEC_PORTS,
    Layout,
    compose_layout,
    services,
)

SPEC_SERVICES = {"node1", "node2", "node3", "redis-node1", "redis-node2", "redis-node3",
                 "substation1", "substation2", "substation3", "redis-grid", "balancer", "panel",
                 "prometheus"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_checked_in_files_are_what_services_py_generates():
    for path, text in generated_files().items():
        assert path.read_text() == text, (
            f"{path.name} is out of date with stack/services.py: run `python -m stack generate`")


def test_compose_has_the_spec_services_plus_grafana_and_locust():
    assert set(compose()["services"]) == SPEC_SERVICES | {"grafana", "locust"}


def test_local_and_compose_define_the_same_commands_env_keys_and_dependencies():
    layout = Layout(ports=SPEC_PORTS, cluster_token="c", admin_token="a",
                    prometheus_config="run/prometheus.yml")
    local = {svc.name: svc for svc in services(layout)}
    in_compose = compose()["services"]
    assert set(local) == SPEC_SERVICES
    for name, svc in local.items():
        c = in_compose[name]
        assert set(c.get("environment", {})) == set(svc.env), name
        assert set(c.get("depends_on", {})) == set(svc.depends_on), name
        # Same program, same flags in the same order; only hosts, ports and paths differ.
        program = [Path(argv[0]).name.rstrip("0123456789.") for argv in (svc.argv, c["command"])]
        assert program[0] == program[1], name
        assert [shape(a) for a in svc.argv[1:]] == [shape(a) for a in c["command"][1:]], name


def shape(arg: str) -> str:
    """An argument with its layout-specific parts (host, port, path) masked."""
    flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    value = re.sub(r"\d+", "N", value.replace("127.0.0.1", "HOST").replace("0.0.0.0", "HOST"))
    return flag + eq + ("PATH" if "/" in value else value)


def test_only_the_spec_ports_are_published_and_redis_is_not():
    published = {}
    for name, svc in compose()["services"].items():
        for mapping in svc.get("ports", []):
            host_ip, host_port, container_port = mapping.split(":")
            assert host_ip == "127.0.0.1" and host_port == container_port, mapping
            published[name] = int(host_port)
    expected = {name: port for name, port in SPEC_PORTS.items() if not name.startswith("redis")}
    assert published == {**expected, "grafana": 3000, "locust": 8089}


def test_containers_restart_wait_for_healthy_dependencies_and_have_health_checks():
    services_ = compose()["services"]
    for name, svc in services_.items():
        assert svc["restart"] == "unless-stopped", name
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services_ and cond == {"condition": "service_healthy"}, (name, dep)
            assert "healthcheck" in services_[dep], dep
    assert set(compose()["volumes"]) >= {f"{name}-data" for name in SPEC_SERVICES
                                         if name.startswith("redis")}


def test_tokens_come_from_env_without_defaults():
    text = COMPOSE_FILE.read_text()
    for key in ("CLUSTER_TOKEN", "ADMIN_TOKEN"):
        uses = re.findall(r"\$\{" + key + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), (key, uses)


def test_kv_redis_uses_aof_always_on_a_named_volume_and_services_use_compose_hostnames():
    services_ = compose()["services"]
    for i in (1, 2, 3):
        redis = services_[f"redis-node{i}"]
        cmd = redis["command"]
        assert cmd[cmd.index("--appendonly") + 1] == "yes"
        assert cmd[cmd.index("--appendfsync") + 1] == "always"
        assert redis["volumes"] == [f"redis-node{i}-data:/data"]
        env = services_[f"node{i}"]["environment"]
        assert env["REDIS_URL"] == f"redis://redis-node{i}:6379/0"
        assert env["NODE_URLS"] == "http://node1:5001,http://node2:5002,http://node3:5003"
    assert "127.0.0.1" not in str({k: v.get("environment") for k, v in services_.items()})


def test_python_services_share_one_image_built_from_the_dockerfile():
    layout = compose_layout()
    for svc in services(layout):
        c = compose()["services"][svc.name]
        if svc.kind == GUNICORN:
            assert c["build"] == "." and c["image"] == "gridclock:local"
        if svc.kind == REDIS:
            assert c["image"].startswith("redis:")


def test_dockerfile_is_slim_non_root_caches_dependencies_and_has_a_healthcheck():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    lines = [line.split()[0] for line in text.splitlines() if line and line[0].isupper()]
    assert "USER" in lines and "HEALTHCHECK" in lines
    assert text.index("COPY pyproject.toml") < text.index("pip install") < text.index("COPY . .")
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "data", "run", ".git"} <= set(ignored)


def test_prometheus_compose_config_scrapes_every_metrics_service_by_hostname():
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    targets = {sc["labels"]["instance"]: sc["targets"][0]
               for job in config["scrape_configs"] for sc in job["static_configs"]}
    expected = {svc.name: f"{svc.name}:{svc.port}" for svc in services(compose_layout())
                if svc.metrics}
    assert targets == expected
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
