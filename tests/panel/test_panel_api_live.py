"""The panel's REST client against the real stack: data, or an ApiError with a human reason."""

from __future__ import annotations

import socket
import uuid

from common.procs import free_port
from panel.api import ApiError, KvNode, Service, fetch_all


def test_status_events_and_health_come_back_as_data(kv_nodes):
    node = kv_nodes[0]
    status = node.status()
    assert isinstance(status, dict) and len(status["vector_clock"]) == 3
    assert isinstance(node.health(), dict)
    events = node.events(since=0, limit=5)
    assert set(events) >= {"events", "next"}


def test_put_then_get_with_context_at_another_node(kv_nodes):
    key = f"panel-{uuid.uuid4().hex[:8]}"
    put = kv_nodes[0].put(key, {"n": 1})
    assert put["value"] == {"n": 1}
    got = kv_nodes[1].get(key, put["vector_clock"])  # the context makes node2 wait for it
    assert got["value"] == {"n": 1} and got["version"] == put["version"]


def test_missing_key_is_a_404_error_carrying_the_node_clock(kv_nodes):
    result = kv_nodes[2].get(f"never-{uuid.uuid4().hex}")
    assert isinstance(result, ApiError) and result.status == 404 and not result.down
    assert len(result.body["vector_clock"]) == 3
    assert result.reason.startswith("HTTP 404: ")


def test_bad_input_reports_the_services_json_error(kv_nodes):
    result = kv_nodes[0].request("PUT", "/kv/k", json={"no": "value"})
    assert isinstance(result, ApiError) and result.status == 400
    assert result.reason == f"HTTP 400: {result.body['error']}"
    assert str(result).startswith("node1 error: HTTP 400")


def test_admin_calls_without_or_with_a_wrong_token_are_refused(stack):
    no_token = KvNode(0, stack.node_urls[0], admin_token=None)
    result = no_token.set_link(1, 100, False)
    assert isinstance(result, ApiError) and "ADMIN_TOKEN is not set" in result.reason
    wrong = KvNode(0, stack.node_urls[0], admin_token="wrong")
    result = wrong.set_link(1, 100, False)
    assert isinstance(result, ApiError) and result.status == 401
    assert no_token.status()["links"]["1"]["delay_ms"] == 0  # nothing changed


def test_link_settings_round_trip(kv_nodes):
    node1 = kv_nodes[0]
    try:
        assert isinstance(node1.set_link(1, 250, True), dict)
        link = node1.status()["links"]["1"]
        assert (link["delay_ms"], link["paused"]) == (250, True)
    finally:
        node1.set_link(1, 0, False)
    assert node1.links()["links"]["1"] == {"delay_ms": 0, "paused": False}


def test_nothing_listening_is_connection_refused():
    result = Service("node9", f"http://127.0.0.1:{free_port()}").status()
    assert isinstance(result, ApiError) and result.down and result.status is None
    assert str(result) == "node9 down: connection refused"


def test_a_service_that_never_answers_is_a_timeout():
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = Service("node9", f"http://127.0.0.1:{port}", timeout=0.3).status()
    assert isinstance(result, ApiError) and result.down
    assert result.reason == "no answer within 0.3s"


def test_unresolvable_host_says_cannot_connect():
    result = Service("node9", "http://no-such-host.invalid:5001", timeout=1).status()
    assert isinstance(result, ApiError) and result.reason.startswith("cannot connect")


def test_fetch_all_runs_calls_in_parallel_and_keeps_names(kv_nodes):
    dead = Service("ghost", f"http://127.0.0.1:{free_port()}")
    answers = fetch_all({"node1": kv_nodes[0].status, "ghost": dead.status})
    assert answers["node1"]["node"] == 0
    assert isinstance(answers["ghost"], ApiError)


def test_charge_end_session_and_strategy_through_the_balancer(balancer):
    session = balancer.charge(f"EV-panel-{uuid.uuid4().hex[:6]}", power_kw=3.0, duration_s=30)
    assert session["power_kw"] == 3.0 and session["substation"].startswith("substation")
    assert isinstance(balancer.end_session(session["session_id"]), dict)
    gone = balancer.end_session(session["session_id"])
    assert isinstance(gone, ApiError) and gone.status == 404
    before = balancer.status()["strategy"]
    try:
        assert isinstance(balancer.set_strategy("round-robin"), dict)
        assert balancer.status()["strategy"] == "round-robin"
        bad = balancer.set_strategy("random")
        assert isinstance(bad, ApiError) and bad.status == 400
    finally:
        balancer.set_strategy(before)
