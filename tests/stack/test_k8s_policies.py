"""The NetworkPolicies of deploy/kubernetes/ admit exactly the documented paths.

A small evaluator of Kubernetes ingress semantics (a pod selected by any Ingress policy accepts
only what one of those policies' rules allows; `from` omitted means any source, `ports` omitted
any port) is run over every (source pod, destination pod, port) of the rendered cluster.
"""

from __future__ import annotations

import pytest

from stack import k8s
from stack.services import SUBSTATION_NAMES

from .test_k8s import resources

OUTSIDE = "outside"  # a client outside the namespace (another namespace, a node port, ...)
KV_CLIENT = "kv-client"  # a pod labelled gridclock.io/kv-client=true, e.g. Locust in-cluster


def _matches(selector: dict, labels: dict[str, str] | None) -> bool:
    if labels is None:  # outside the namespace: no podSelector-only peer matches it
        return False
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def allowed(policies: list[dict], source: dict[str, str] | None, dest: dict[str, str],
            port: int) -> bool:
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], dest)
                 and "Ingress" in p["spec"]["policyTypes"]]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", ()):
            ports = rule.get("ports")
            if ports is not None and not any(p["port"] == port for p in ports):
                continue
            peers = rule.get("from")
            if peers is None or any(_matches(peer["podSelector"], source) for peer in peers):
                return True
    return False


def pods(n: int) -> dict[str, dict[str, str]]:
    """Workload name -> its pods' labels, plus the two kinds of client."""
    out = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
           for d in resources(n) if d["kind"] in ("StatefulSet", "Deployment")}
    out[KV_CLIENT] = {k8s.KV_CLIENT: "true"}
    return out


PORTS = {k8s.KV: [k8s.KV_PORT, 6379], "redis-grid": [6379], "balancer": [8080],
         "panel": [8501], "prometheus": [9090], "grafana": [3000],
         **{name: [8001 + i] for i, name in enumerate(SUBSTATION_NAMES)}}
# (destination, port) -> who may connect; everything else must be refused.
EXPECTED = {
    (k8s.KV, k8s.KV_PORT): {k8s.KV, "panel", "prometheus", KV_CLIENT},
    (k8s.KV, 6379): set(),  # a node's Redis: its own pod only (loopback, no policy opens it)
    ("redis-grid", 6379): {*SUBSTATION_NAMES, "balancer"},
    **{(name, 8001 + i): {"balancer", "panel", "prometheus"}
       for i, name in enumerate(SUBSTATION_NAMES)},
}
PUBLIC = {("balancer", 8080), ("panel", 8501), ("prometheus", 9090), ("grafana", 3000)}


@pytest.mark.parametrize("n", k8s.RENDERED_SIZES)
def test_only_the_documented_paths_are_open(n):
    policies = [d for d in resources(n) if d["kind"] == "NetworkPolicy"]
    labels = pods(n)
    sources = {**labels, OUTSIDE: None}
    assert set(PORTS) == set(labels) - {KV_CLIENT}, "a workload without an expectation"
    for dest, ports in PORTS.items():
        for port in ports:
            opened = {name for name, src in sources.items()
                      if allowed(policies, src, labels[dest], port)}
            if (dest, port) in PUBLIC:
                assert opened == set(sources), (dest, port)
            else:
                assert opened == EXPECTED[(dest, port)], (dest, port)


def test_the_evaluator_sees_an_open_path_when_a_policy_allows_more():
    policies = [d for d in resources(3) if d["kind"] == "NetworkPolicy"]
    labels = pods(3)
    assert not allowed(policies, labels["grafana"], labels[k8s.KV], k8s.KV_PORT)
    loose = [p for p in policies if p["metadata"]["name"] != "kv-nodes"]
    loose.append({"spec": {"podSelector": {"matchLabels": {k8s.ROLE: "kv-node"}},
                           "policyTypes": ["Ingress"], "ingress": [{}]}})
    assert allowed(loose, labels["grafana"], labels[k8s.KV], k8s.KV_PORT)


def test_every_pod_is_covered_by_the_default_deny():
    policies = [d for d in resources(3) if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and "ingress" not in deny[0]["spec"]
