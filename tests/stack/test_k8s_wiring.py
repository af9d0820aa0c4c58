"""The rendered pods, run as the manifests give them, form a cluster and replicate.

As root: every pod of deploy/kubernetes/n3 that the KV cluster and the grid need gets a network
namespace host (stack.netns, the hosts of `make up-hosts`) named after the pod, with the DNS
names the pods dial (`node-1.kv-nodes`, `redis-grid`, `substation2`, ...) mapped in each host's
/etc/netns/NAME/hosts. Each container runs the manifest's command and environment, resolved as
the kubelet would (the Secret's tokens, the settings ConfigMap, NODE_ID from the pod ordinal);
only the binaries' paths and Redis's data directory (a volume mount in Kubernetes) are made
local. Skipped locally without root or without the hosts module, failed in CI without root.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from common.procs import Abort, Proc, wait_until
from common.redis_bin import redis_server_path
from stack import k8s

from .netns_hosts import require_root
from .test_k8s import resources

netns = pytest.importorskip("stack.netns", reason="the network-namespace hosts (stack/netns.py)")

pytestmark = pytest.mark.slow

PREFIX, SUBNET = "gk-", "10.211.213.0/24"  # never those of `make up-hosts` or its tests
N = 3
GRID_PODS = ("redis-grid-0", "substation1-0", "substation2-0", "substation3-0", "balancer-0")


def localize(argv: list[str], data_dir: Path) -> list[str]:
    """The container's argv on this machine: local binaries, Redis data in a temp dir."""
    argv = list(argv)
    if argv[0] == "python":
        argv[0] = sys.executable
    elif argv[0] == "redis-server":
        argv[0] = redis_server_path()
        argv[argv.index("--dir") + 1] = str(data_dir)
    return argv


class Pods:
    """Pods of the rendered manifests as processes on network-namespace hosts."""

    def __init__(self, workdir: Path, pods: list[str], tokens: dict[str, str]):
        self.workdir, self.pods, self.tokens = workdir, pods, tokens
        self.network = netns.Network(PREFIX, SUBNET, tuple(pods))
        self.procs: list[Proc] = []

    def url(self, pod: str, port: int) -> str:
        return f"http://{self.network.addresses[pod]}:{port}"

    def in_pod(self, pod: str, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(netns.in_netns(self.network.netns(pod), argv),
                              capture_output=True, text=True, timeout=10)

    def start(self) -> None:
        netns.destroy_prefix(PREFIX)  # leftovers of an interrupted run
        names = {name: pod for name, pod in k8s.dns_names(N).items() if pod in self.pods}
        self.network.create(names)
        docs = resources(N)
        for pod in self.pods:
            workload, ordinal = k8s.pods(N)[pod]
            for container, argv, env in k8s.pod_processes(N, workload, ordinal, self.tokens,
                                                          docs):
                data = self.workdir / pod / container
                data.mkdir(parents=True, exist_ok=True)
                proc = Proc(f"{pod}/{container}",
                            list(netns.in_netns(self.network.netns(pod), localize(argv, data))),
                            env=env, log_path=self.workdir / f"{pod}-{container}.log")
                proc.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
                self.procs.append(proc.start())
                if container == "redis":  # a sidecar: ready before the next container starts
                    self.wait(proc, lambda pod=pod: "PONG" in self.in_pod(
                        pod, ["redis-cli", "ping"]).stdout)

    def wait(self, proc: Proc, ready, timeout: float = 60) -> None:
        def check() -> bool:
            if not proc.running:
                raise Abort(f"{proc.name} exited:\n{proc.log_tail()}")
            return ready()

        wait_until(check, timeout=timeout, interval=0.2, message=f"{proc.name} ready")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=5)
        netns.destroy_prefix(PREFIX, grace_s=2.0)


@pytest.fixture
def cluster(tmp_path: Path):
    require_root("the k8s wiring test")
    tokens = {"CLUSTER_TOKEN": secrets.token_urlsafe(24),
              "ADMIN_TOKEN": secrets.token_urlsafe(24)}
    pods = Pods(tmp_path, [f"node-{i}" for i in range(N)] + list(GRID_PODS), tokens)
    try:
        pods.start()
        yield pods
    finally:
        pods.stop()
        assert not any(netns.leftovers(PREFIX).values())


def health(url: str) -> dict | None:
    resp = requests.get(url + "/health", timeout=2)
    return resp.json() if resp.status_code == 200 else None


def test_rendered_pods_form_a_cluster_replicate_and_route(cluster):
    nodes = [cluster.url(f"node-{i}", k8s.KV_PORT) for i in range(N)]
    for i, url in enumerate(nodes):  # NODE_ID is the pod's ordinal
        report = wait_until(lambda url=url: health(url), timeout=60, interval=0.2,
                            message=f"node-{i} healthy")
        assert report["node"] == i
    # A write at each end reaches every other node: names resolve, the token matches.
    for writer, value in ((0, "from node-0"), (N - 1, "from node-2")):
        key = f"wired-{writer}"
        resp = requests.put(f"{nodes[writer]}/kv/{key}", json={"value": value}, timeout=5)
        assert resp.status_code == 200, resp.text
        for url in nodes:
            wait_until(lambda url=url, key=key, value=value: requests.get(
                f"{url}/kv/{key}", timeout=2).json().get("value") == value,
                timeout=30, interval=0.1, message=f"{key} on {url}")
    clocks = {tuple(requests.get(f"{url}/kv/wired-0", timeout=2).json()["vector_clock"])
              for url in nodes}
    assert clocks == {(1, 0, 1)}
    # The balancer reaches the substations and the grid Redis by their Service names.
    balancer = cluster.url("balancer-0", 8080)
    wait_until(lambda: health(balancer), timeout=60, interval=0.2, message="balancer healthy")
    resp = requests.post(f"{balancer}/charge", json={"vehicle_id": "EV-wired", "power_kw": 7.4},
                         timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["substation"] in {"substation1", "substation2", "substation3"}
