"""Prometheus config and alert rules pass promtool; Grafana provisioning is consistent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from common.settings import REPO_ROOT
from stack.compose import PROMETHEUS_FILE, compose_document
from stack.services import ALERT_RULES, SPEC_PORTS, Layout, write_local_prometheus_config
from tests.conftest import require_tool

from .observability import CONTRACT_METRICS, DASHBOARDS, metric_names, panel_queries

PROVISIONING = REPO_ROOT / "grafana" / "provisioning"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = require_tool("promtool", "the Prometheus config and rules are checked with promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_local_prometheus_config_with_its_rules_passes_promtool(tmp_path: Path):
    config = tmp_path / "prometheus.yml"
    layout = Layout(ports=SPEC_PORTS, cluster_token="c", admin_token="a",
                    prometheus_config=str(config))
    write_local_prometheus_config(layout)
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_compose_prometheus_config_passes_promtool():
    # Its rule file path only exists inside the container; the rules are checked below.
    result = promtool("check", "config", "--syntax-only", str(PROMETHEUS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    result = promtool("check", "rules", str(ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("test", "rules", str(REPO_ROOT / "prometheus" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_cover_what_matters_and_use_contract_metrics():
    rules = [rule for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
             for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"SubstationNearCapacity", "KvBufferNotEmpty", "KvOutboxGrowing",
            "TargetDown"} <= names
    for rule in rules:
        assert metric_names(rule["expr"]) <= CONTRACT_METRICS, rule["alert"]


def test_datasource_has_a_fixed_uid_and_points_at_the_compose_prometheus():
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{SPEC_PORTS['prometheus']}"


def test_dashboard_provider_reads_the_directory_compose_mounts():
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "gridclock.yml").read_text())
    paths = {p["options"]["path"] for p in providers["providers"]}
    mounts = compose_document()["services"]["grafana"]["volumes"]
    assert {f"./grafana/dashboards:{path}:ro" for path in paths} <= set(mounts)
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_dashboards_name_the_fixed_datasource_and_only_contract_metrics():
    assert {path.name for path in DASHBOARDS} == {"grid.json", "kv.json"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        assert dashboard["panels"], path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "prometheus", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus"
    assert len(uids) == len(DASHBOARDS)
    for name, title, expr in panel_queries():
        unknown = metric_names(expr) - CONTRACT_METRICS
        assert not unknown, (name, title, unknown)


def test_dashboards_show_what_the_issue_asks_for():
    exprs = {name: " ".join(e for n, _, e in panel_queries() if n == name)
             for name in ("grid.json", "kv.json")}
    for metric in ("substation_load_watts", "substation_capacity_watts",
                   "substation_utilization_ratio", "balancer_routed_total",
                   'outcome="refused"', "balancer_decision_seconds_bucket",
                   "balancer_upstream_healthy"):
        assert metric in exprs["grid.json"], metric
    for metric in ("kv_vector_clock", "kv_buffer_messages", "kv_buffered_seconds_bucket",
                   "kv_outbox_messages", "kv_replication_latency_seconds_bucket",
                   "http_requests_total"):
        assert metric in exprs["kv.json"], metric


def test_metric_name_extraction_sees_typos_and_ignores_labels_and_functions():
    expr = ('histogram_quantile(0.99, sum by (le, instance) '
            '(rate(kv_bufered_seconds_bucket{job="kv-node"}[$__rate_interval])))')
    assert metric_names(expr) == {"kv_bufered_seconds"}
