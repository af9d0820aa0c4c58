"""The panel's causal demo: narrating the CLI's steps (pure), and a whole run on a real stack."""

from __future__ import annotations

from nodes.client import DemoStep as CliStep
from nodes.client import KVError
from panel.demo import DemoRun, causal_demo, delivery_verdict, panel_steps

CLOCKS = {"node1": "[1, 1, 0]", "node2": "[1, 1, 0]", "node3": "[0, 0, 0]"}


def cli_run(y_waited_ms: int = 2900, fail_at: int | None = None):
    steps = [
        CliStep("Slow link", "node1 → node3 now delays every message by 3000 ms.",
                {"delay_ms": 3000}),
        CliStep("Write x at node1", "x = 'A'", {"response": {}}),
        CliStep("Read x at node2", "node2 answers x = 'A'", {"response": {}}),
        CliStep("Write y at node2", "y = 'B'", {"response": {}}),
        CliStep("node3 buffers y", "y waits in the buffer",
                {"buffered": True, "status": {"vector_clock": [0, 0, 0]},
                 "message": {"origin": 1, "vc": [1, 1, 0], "key": "y"}}),
        CliStep("node3 delivers x, then y", "node3's delivery log: x, y",
                {"events": [{"key": "x", "buffered_ms": 0},
                            {"key": "y", "buffered_ms": y_waited_ms}]}),
    ]
    for i, step in enumerate(steps):
        if i == fail_at:
            raise KVError("http://node3: HTTP 503: redis unavailable")
        yield step


def test_steps_are_numbered_phased_and_carry_every_clock():
    steps = list(panel_steps(cli_run(), lambda: CLOCKS))
    assert [s.phase for s in steps] == ["link", "put-x", "read-x", "put-y", "buffered",
                                        "delivered", "healed"]
    assert [s.number for s in steps] == list(range(1, 8))
    assert all(s.clocks == CLOCKS for s in steps)
    buffered, delivered = steps[4], steps[5]
    assert buffered.level == "warning" and "Still missing: 1 write from node1." in buffered.text
    assert delivered.level == "success" and "x first, then y after 2.9 s" in delivered.text
    assert steps[-1].level == "success"


def test_a_failure_ends_the_demo_with_an_error_step_not_an_exception():
    steps = list(panel_steps(cli_run(fail_at=4), lambda: CLOCKS))
    assert [s.phase for s in steps] == ["link", "put-x", "read-x", "put-y", "failed"]
    assert steps[-1].level == "error" and "HTTP 503" in steps[-1].text


def test_delivery_verdict_flags_wrong_order_and_unbuffered_delivery():
    assert delivery_verdict([{"key": "y"}, {"key": "x"}])[0] == "error"
    assert delivery_verdict([{"key": "x"}, {"key": "y", "buffered_ms": 0}])[0] == "warning"
    assert delivery_verdict([{"key": "x"}, {"key": "y", "buffered_ms": 5}])[0] == "success"


def test_unbuffered_run_is_a_warning_in_the_narration():
    steps = list(panel_steps(cli_run(y_waited_ms=0), lambda: CLOCKS))
    assert steps[5].level == "warning"


def test_demo_needs_three_nodes(kv_nodes):
    [step] = list(causal_demo(kv_nodes[:2], "token"))
    assert step.phase == "failed" and "2 node(s)" in step.text


def test_wrong_admin_token_fails_cleanly(kv_nodes):
    steps = list(causal_demo(kv_nodes, "wrong-token"))
    assert [s.phase for s in steps] == ["failed"]
    assert "401" in steps[0].text


def test_demo_on_the_stack_buffers_y_at_node3_then_delivers_x_before_y(kv_nodes, stack):
    run = DemoRun(causal_demo(kv_nodes, stack.admin_token)).start()
    run.join(timeout=60)
    assert run.done
    by_phase = {s.phase: s for s in run.steps}
    assert list(by_phase) == ["link", "put-x", "read-x", "put-y", "buffered", "delivered",
                              "healed"], [s.text for s in run.steps]
    assert "Still missing: 1 write from node1" in by_phase["buffered"].text
    assert by_phase["delivered"].level == "success", by_phase["delivered"].text
    # at the buffered step node3 had not yet seen node1's write x; at the end it has
    buffered_clock = by_phase["buffered"].clocks["node3"]
    assert buffered_clock != by_phase["healed"].clocks["node3"]
    assert kv_nodes[0].status()["links"]["2"]["delay_ms"] == 0  # link healed
