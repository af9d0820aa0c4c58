"""deploy/kubernetes/ cannot drift from stack/services.py, nor from compose.yaml, and validates.

The manifests are rendered by `python -m stack k8s --nodes N` (stack/k8s.py); n3, n5 and n7 are
checked in. These tests fail when a checked-in file differs from the renderer, when a pod would
run another command or environment than compose's service (hostnames aside), when a resource
does not validate against the Kubernetes schemas (offline, strict), or when a property the
cluster relies on (ordinals, majority, tokens, probes, policies) is lost.
"""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from common.settings import REPO_ROOT
from stack import k8s
from stack.compose import COMPOSE_FILE
from stack.services import SUBSTATION_NAMES, TUNABLES
from tests.conftest import require_tool

SIZES = k8s.RENDERED_SIZES
TOKENS = {"CLUSTER_TOKEN": "cluster-token-for-the-test", "ADMIN_TOKEN": "admin-token-for-the-test"}


@functools.cache
def _load(n: int) -> dict[str, list[dict]]:
    folder = k8s.out_dir(n)
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d]
            for path in sorted(folder.glob("*.yaml"))}


def load(n: int) -> dict[str, list[dict]]:
    """The checked-in files of deploy/kubernetes/n<n>, parsed (a copy each call)."""
    return copy.deepcopy(_load(n))


def resources(n: int) -> list[dict]:
    return [d for name, docs in load(n).items() if name != "kustomization.yaml" for d in docs]


def find(n: int, kind: str, name: str) -> dict:
    matches = [d for d in resources(n) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def containers(workload: dict) -> dict[str, dict]:
    pod = workload["spec"]["template"]["spec"]
    return {c["name"]: c for c in (*pod.get("initContainers", ()), *pod["containers"])}


# -- drift -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_checked_in_manifests_are_what_the_renderer_writes(n):
    stale = k8s.write(n, check=True)
    assert stale == [], (f"deploy/kubernetes/n{n} is out of date ({stale}): "
                         f"run `python -m stack k8s --nodes {n}`")


def test_check_mode_reports_a_changed_or_extra_file(tmp_path):
    assert k8s.write(4, tmp_path) != []  # first write: every file is new
    assert k8s.write(4, tmp_path, check=True) == []
    (tmp_path / "grid.yaml").write_text("# edited by hand\n")
    (tmp_path / "stray.yaml").write_text("{}\n")
    assert k8s.write(4, tmp_path, check=True) == ["grid.yaml", "stray.yaml"]


def test_cli_renders_any_n_and_check_fails_on_drift(tmp_path):
    run = [sys.executable, "-m", "stack", "k8s", "--nodes", "4", "--out", str(tmp_path)]
    assert subprocess.run(run, cwd=REPO_ROOT, capture_output=True).returncode == 0
    statefulset = next(d for d in yaml.safe_load_all((tmp_path / "kv-nodes.yaml").read_text())
                       if d["kind"] == "StatefulSet")
    assert statefulset["spec"]["replicas"] == 4
    check = subprocess.run([*run, "--check"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    (tmp_path / "panel.yaml").write_text("# stale\n")
    check = subprocess.run([*run, "--check"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode == 1 and "panel.yaml" in check.stderr


@pytest.mark.parametrize("n", SIZES)
def test_kustomization_lists_every_file_of_the_folder(n):
    files = load(n)
    kustomization = files.pop("kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(files)


# -- the same services as compose -------------------------------------------------------------
def _compose_value(value: str) -> str:
    """A compose value as the container sees it with TOKENS in .env and no tunable set."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: TOKENS[m[1]], value)
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m[2], value)


def _hosts(value: str, side: str) -> str:
    """Hostnames (and the node's port, one per pod template in Kubernetes) made comparable."""
    if side == "k8s":
        value = re.sub(r"node-(\d+)\.kv-nodes:5001", lambda m: f"node{int(m[1]) + 1}:KVPORT",
                       value)
        return value.replace("redis://127.0.0.1:", "redis://OWN-REDIS:")
    value = re.sub(r"(node\d+):500\d", r"\1:KVPORT", value)
    return re.sub(r"redis://redis-node\d+:", "redis://OWN-REDIS:", value)


def _argv_shape(argv: list[str]) -> list[str]:
    return [re.sub(r"127\.0\.0\.1|0\.0\.0\.0", "HOST", a) for a in argv]


def _bound_port(container: str, argv: list[str], env: dict[str, str]) -> int:
    """The port a container's process listens on, read from its command and environment."""
    if "PORT" in env:
        return int(env["PORT"])
    for flag in ("--port", "--server.port"):
        if flag in argv:
            return int(argv[argv.index(flag) + 1])
    for arg in argv:
        if arg.startswith("--web.listen-address="):
            return int(arg.rsplit(":", 1)[1])
    assert container == "grafana", container
    return 3000  # Grafana's default, as in compose


def _node_urls(n: int) -> str:
    return ",".join(f"http://node{i + 1}:KVPORT" for i in range(n))


def _pod_of(name: str) -> tuple[str, int, str]:
    """(workload, ordinal, container) running compose's service `name`."""
    if match := re.fullmatch(r"(redis-)?node(\d+)", name):
        return k8s.KV, int(match[2]) - 1, "redis" if match[1] else k8s.KV
    return name, 0, "redis" if name.startswith("redis-") else name


@pytest.mark.parametrize("n", SIZES)
def test_pods_run_composes_commands_and_environment_apart_from_hostnames(n):
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    committed = resources(n)
    checked = set()
    for name, svc in compose.items():
        if name == "locust":
            continue  # compose only: a load generator is not part of a deployment
        workload, ordinal, container = _pod_of(name)
        if ordinal >= n:
            continue
        procs = {c: (argv, env) for c, argv, env in
                 k8s.pod_processes(n, workload, ordinal, TOKENS, committed)}
        argv, env = procs[container]
        # Grafana runs its image's own command in both.
        assert _argv_shape(argv) == _argv_shape([str(a) for a in svc.get("command", [])]), name
        want = {k: _hosts(_compose_value(str(v)), "compose")
                for k, v in svc.get("environment", {}).items()}
        got = {k: _hosts(v, "k8s") for k, v in env.items()}
        if container == k8s.KV:  # every pod of the set listens on the same port
            assert got.pop("PORT") == str(k8s.KV_PORT) and want.pop("PORT").startswith("500")
        if "NODE_URLS" in want:  # compose has 3 nodes, this cluster n, named alike
            assert got.pop("NODE_URLS") == _node_urls(n), name
            assert want.pop("NODE_URLS") == _node_urls(3), name
        assert got == want, name
        checked.add(name)
    assert {f"node{i}" for i in (1, 2, 3)} <= checked and "grafana" in checked
    assert {"balancer", "panel", "prometheus", "redis-grid", *SUBSTATION_NAMES} <= checked


@pytest.mark.parametrize("n", SIZES)
def test_every_pod_gets_its_ordinal_as_node_id_and_every_peer_by_stable_dns(n):
    urls = [f"http://node-{i}.kv-nodes:5001" for i in range(n)]
    for ordinal in range(n):
        procs = {c: env for c, _, env in
                 k8s.pod_processes(n, k8s.KV, ordinal, TOKENS, resources(n))}
        assert procs[k8s.KV]["NODE_ID"] == str(ordinal)
        assert procs[k8s.KV]["NODE_URLS"].split(",") == urls
    panel = k8s.pod_processes(n, "panel", 0, TOKENS, resources(n))[0][2]
    assert panel["NODE_URLS"].split(",") == urls
    statefulset = find(n, "StatefulSet", k8s.KV)
    service = find(n, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    assert statefulset["spec"]["replicas"] == n


def test_settings_config_map_holds_composes_defaults():
    settings = find(3, "ConfigMap", k8s.SETTINGS)
    assert settings["data"] == TUNABLES


# -- schemas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_every_resource_validates_strictly_against_the_kubernetes_schemas(n):
    kinds = set()
    for doc in resources(n):
        # Raises on an unknown field, a wrong type or a missing required field (offline).
        kubernetes_validate.validate(doc, k8s.KUBERNETES_VERSION, strict=True)
        kinds.add(doc["kind"])
    assert {"StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy",
            "ConfigMap", "Role", "RoleBinding", "ServiceAccount", "Namespace"} <= kinds


def test_the_validator_rejects_an_unknown_field():
    doc = find(3, "StatefulSet", k8s.KV)
    doc["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, k8s.KUBERNETES_VERSION, strict=True)


def test_rendered_prometheus_config_and_rules_pass_promtool(tmp_path):
    promtool = require_tool("promtool", "the Prometheus config in the ConfigMap is checked by it")
    data = find(3, "ConfigMap", "prometheus-config")["data"]
    (tmp_path / "alerts.yml").write_text(data["alerts.yml"])
    config = yaml.safe_load(data["prometheus.yml"])
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    # Debian's Prometheus is built without Kubernetes discovery: check everything else with a
    # static target in its place (test_relabelling_keeps_... covers the discovered side).
    for scrape in config["scrape_configs"]:
        assert scrape.pop("kubernetes_sd_configs")
        scrape["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- properties the cluster relies on ---------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_disruption_budget_keeps_a_majority_of_nodes_up(n):
    pdb = find(n, "PodDisruptionBudget", k8s.KV)
    assert pdb["spec"]["minAvailable"] == n // 2 + 1 > n / 2
    assert find(n, "PodDisruptionBudget", "balancer")["spec"]["minAvailable"] >= 1
    assert find(n, "Deployment", "balancer")["spec"]["replicas"] >= 2


def test_each_node_has_its_own_durable_redis_on_a_claimed_volume_reachable_only_in_its_pod():
    statefulset = find(3, "StatefulSet", k8s.KV)
    redis = containers(statefulset)["redis"]
    argv = redis["args"]
    assert argv[argv.index("--appendfsync") + 1] == "always"
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1" and "ports" not in redis
    assert redis["restartPolicy"] == "Always"  # a sidecar: up before the node starts
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert redis["volumeMounts"] == [{"name": "data", "mountPath": "/data"}] and "data" in claims
    grid_redis = containers(find(3, "StatefulSet", "redis-grid"))["redis"]
    assert grid_redis["volumeMounts"][0]["mountPath"] == "/data"


def test_probes_and_resources_on_every_container():
    for doc in resources(3):
        if doc["kind"] not in ("StatefulSet", "Deployment"):
            continue
        for name, c in containers(doc).items():
            where = f"{doc['metadata']['name']}/{name}"
            assert {"readinessProbe", "livenessProbe"} <= set(c), where
            assert set(c["resources"]) == {"requests", "limits"}, where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            if c["image"] == k8s.APP_IMAGE:
                assert c["readinessProbe"]["httpGet"]["path"] == "/health", where
                assert c["livenessProbe"]["httpGet"]["path"] == "/health", where
                assert c["securityContext"]["runAsNonRoot"] is True, where


def test_no_token_is_written_in_any_manifest_and_every_token_comes_from_the_secret():
    for n in SIZES:
        for path in k8s.out_dir(n).glob("*.yaml"):
            text = path.read_text()
            assert "${" not in text and "<secret" not in text and "<setting" not in text, path
        kinds = {d["kind"] for d in resources(n)}
        assert "Secret" not in kinds
        for doc in resources(n):
            if doc["kind"] not in ("StatefulSet", "Deployment"):
                continue
            for c in containers(doc).values():
                for item in c.get("env", ()):
                    if item["name"].endswith("TOKEN") or "PASSWORD" in item["name"]:
                        assert "value" not in item, (doc["metadata"]["name"], item)
                        assert item["valueFrom"]["secretKeyRef"]["name"] == k8s.SECRET


def test_configmaps_carry_the_same_grafana_and_prometheus_files_as_compose():
    dashboards = find(3, "ConfigMap", "grafana-dashboards")["data"]
    for path in (REPO_ROOT / "grafana" / "dashboards").glob("*.json"):
        assert dashboards[path.name] == path.read_text()
    provisioning = find(3, "ConfigMap", "grafana-provisioning")["data"]
    root = REPO_ROOT / "grafana" / "provisioning"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(provisioning) == len(files)
    for path in files:
        assert provisioning[str(path.relative_to(root)).replace("/", "__")] == path.read_text()
    alerts = find(3, "ConfigMap", "prometheus-config")["data"]["alerts.yml"]
    assert alerts == (REPO_ROOT / "prometheus" / "alerts.yml").read_text()


def test_prometheus_discovers_pods_with_rbac_limited_to_reading_pods():
    config = yaml.safe_load(find(3, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (scrape,) = config["scrape_configs"]
    assert scrape["kubernetes_sd_configs"] == [{"role": "pod",
                                                "namespaces": {"own_namespace": True}}]
    role = find(3, "Role", "prometheus")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]}]
    pod = find(3, "StatefulSet", "prometheus")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "prometheus"


def _relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str] | None:
    """Prometheus relabelling (keep and replace, the actions the config uses); None: dropped."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(k, "") for k in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if not match:
                return None
        elif action == "replace" and match:
            labels[rule["target_label"]] = match.expand(
                rule.get("replacement", "$1").replace("$", "\\"))
    return labels


def test_relabelling_keeps_each_services_http_port_with_its_job_and_pod_name():
    config = yaml.safe_load(find(3, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    rules = config["scrape_configs"][0]["relabel_configs"]
    jobs = {}
    for doc in resources(3):
        if doc["kind"] not in ("StatefulSet", "Deployment"):
            continue
        pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        for c in containers(doc).values():  # role=pod: one target per container port
            for port in c.get("ports") or [{}]:
                target = {"__meta_kubernetes_pod_name": f"{doc['metadata']['name']}-0",
                          "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                          **{"__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", k): v
                             for k, v in pod_labels.items()}}
                kept = _relabel(target, rules)
                if kept is not None:
                    jobs[kept["instance"]] = kept["job"]
    assert jobs == {"node-0": "kv-node", **{f"{s}-0": "substation" for s in SUBSTATION_NAMES},
                    "balancer-0": "balancer", "panel-0": "panel", "prometheus-0": "prometheus"}


@pytest.mark.parametrize("n", [1, 2, 4, 6, 9])
def test_any_n_renders_valid_manifests_with_n_ordinals_and_a_majority_budget(n):
    docs = [d for resources_ in k8s.documents(n).values() for d in resources_]
    for doc in docs:
        kubernetes_validate.validate(doc, k8s.KUBERNETES_VERSION, strict=True)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert by_kind[("StatefulSet", k8s.KV)]["spec"]["replicas"] == n
    assert by_kind[("PodDisruptionBudget", k8s.KV)]["spec"]["minAvailable"] == n // 2 + 1
    last = {c: env for c, _, env in k8s.pod_processes(n, k8s.KV, n - 1, TOKENS, docs)}[k8s.KV]
    assert last["NODE_ID"] == str(n - 1) and len(last["NODE_URLS"].split(",")) == n


def test_a_cluster_needs_a_node():
    with pytest.raises(ValueError):
        k8s.documents(0)


@pytest.mark.parametrize("n", SIZES)
def test_every_address_a_pod_dials_names_a_pod_listening_on_that_port(n):
    docs = resources(n)
    names, pods = k8s.dns_names(n), k8s.pods(n)
    listening = {}  # pod -> ports its containers declare, checked against what they bind
    for pod, (workload, ordinal) in pods.items():
        declared = {c["name"]: {p["containerPort"] for p in c.get("ports", ())}
                    for c in containers(find(n, "StatefulSet" if workload in (
                        k8s.KV, "redis-grid", "prometheus", "grafana") else "Deployment",
                        workload)).values()}
        for container, argv, env in k8s.pod_processes(n, workload, ordinal, TOKENS, docs):
            if declared[container]:
                assert declared[container] == {_bound_port(container, argv, env)}, pod
        listening[pod] = set().union(*declared.values())
    datasource = find(n, "ConfigMap", "grafana-provisioning")["data"]
    dialled = set()
    for pod, (workload, ordinal) in pods.items():
        texts = [v for _, _, env in k8s.pod_processes(n, workload, ordinal, TOKENS, docs)
                 for v in env.values()]
        if workload == "grafana":
            texts += list(datasource.values())
        for host, port in re.findall(r"//([\w.-]+):(\d+)", " ".join(texts)):
            if host == "127.0.0.1":
                continue  # the pod's own Redis sidecar
            assert host in names, (pod, host)
            assert int(port) in listening[names[host]], (pod, host, port)
            dialled.add(host)
    assert {f"node-{i}.kv-nodes" for i in range(n)} | {"redis-grid", "balancer",
                                                       "prometheus"} <= dialled
