"""The rest of bad input: non-standard JSON numbers, over-long request lines, and causal-context
waits that cannot starve writes. Every refusal is 4xx JSON and changes nothing."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from common.procs import wait_until
from tests.kv.conftest import CLUSTER_TOKEN


def _state(kv3) -> list:
    return [(s["vector_clock"], s["store"], s["buffer"]) for s in map(kv3.state, range(3))]


NON_STANDARD = [
    ("value NaN", "/kv/existing", b'{"value": NaN}', {}),
    ("value Infinity", "/kv/existing", b'{"value": Infinity}', {}),
    ("value -Infinity nested", "/kv/existing", b'{"value": {"a": [1, -Infinity]}}', {}),
    ("context NaN", "/kv/existing", b'{"value": 1, "context": [0, NaN, 0]}', {}),
    ("replicated value NaN", "/replicate",
     b'{"from": 1, "messages": [{"vc": [0, 1, 0], "key": "r", "value": NaN}]}',
     {"X-Cluster-Token": CLUSTER_TOKEN}),
    ("replicated clock Infinity", "/replicate",
     b'{"from": 1, "messages": [{"vc": [0, Infinity, 0], "key": "r", "value": 1}]}',
     {"X-Cluster-Token": CLUSTER_TOKEN}),
]


@pytest.mark.parametrize("name,path,body,headers", NON_STANDARD, ids=[b[0] for b in NON_STANDARD])
def test_nan_and_infinity_are_refused_and_change_nothing(kv3_shared, name, path, body,
                                                         headers) -> None:
    kv3 = kv3_shared
    kv3.put(0, "existing", "v")
    kv3.wait_converged()
    before = _state(kv3)
    method = requests.post if path == "/replicate" else requests.put
    resp = method(kv3.urls[0] + path, data=body,
                  headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert "not a JSON number" in resp.json()["error"]
    assert _state(kv3) == before
    # Whatever is stored can always be read back as standard JSON.
    json.loads(requests.get(f"{kv3.urls[0]}/kv/existing").text, parse_constant=_fail)


def _fail(name: str):
    raise AssertionError(f"non-standard JSON number {name} in a response")


@pytest.mark.parametrize("path", ["/kv/" + "k" * 10_000, "/kv/x?context=" + "1," * 5000])
def test_over_long_request_line_is_json_4xx(kv3_shared, path) -> None:
    kv3 = kv3_shared
    before = _state(kv3)
    resp = requests.get(kv3.urls[0] + path)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json()["error"]
    put = requests.put(kv3.urls[0] + path, json={"value": 1})
    assert 400 <= put.status_code < 500 and put.json()["error"]
    assert _state(kv3) == before


def test_malformed_request_line_is_json(kv3_shared) -> None:
    port = int(kv3_shared.urls[0].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /status HTTP/9\x00x\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split()[1].startswith(b"4")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]


def test_unsatisfiable_context_reads_do_not_starve_writes(kv_cluster_factory) -> None:
    """50 reads whose context this node can never reach stay in flight; PUTs still succeed.

    The waits last CONTEXT_WAIT_S = 6 s; without the cap on waiters each PUT would queue behind
    them for seconds (every worker thread waiting), so a PUT slower than 3 s is a failure.
    """
    kv3 = kv_cluster_factory(3, env={"CONTEXT_WAIT_S": "6"})
    stop = threading.Event()
    outcomes: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                r = requests.get(f"{kv3.urls[0]}/kv/x", params={"context": "999999,0,0"},
                                 timeout=20)
                outcomes.append("refused" if "too many" in r.json()["error"] else r.status_code)
            except requests.RequestException as exc:
                outcomes.append(type(exc).__name__)

    readers = [threading.Thread(target=reader) for _ in range(50)]
    for t in readers:
        t.start()
    try:
        wait_until(lambda: "refused" in outcomes, timeout=20, message="waiters capped")
        for i in range(20):
            started = time.monotonic()
            resp = requests.put(f"{kv3.urls[0]}/kv/w{i}", json={"value": i}, timeout=20)
            assert resp.status_code == 200, resp.text
            assert time.monotonic() - started < 3.0, "a PUT waited behind context readers"
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert set(outcomes) <= {"refused", 503}  # every read failed cleanly: JSON 503
