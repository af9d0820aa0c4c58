"""LocalStack (the suite's stack) leaves nothing behind, even when start() fails half way."""

from __future__ import annotations

import os
import socket

import pytest

from stack.local import LocalStack


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_failed_start_stops_what_was_already_started(tmp_path):
    stack = LocalStack(tmp_path, workers=1)
    with socket.socket() as squatter:  # redis-grid's port is taken: it exits at once
        squatter.bind(("127.0.0.1", stack.ports["redis-grid"]))
        squatter.listen()
        with pytest.raises(Exception, match="redis-grid"):
            stack.start()
    assert {"redis-node1", "redis-node2", "redis-node3", "redis-grid"} <= set(stack.procs)
    for name, proc in stack.procs.items():
        assert proc.popen.poll() is not None, name
        assert not group_alive(proc.popen.pid), name
