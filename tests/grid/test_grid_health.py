"""Active health checks: a definite "no" ejects at once, silence only after EJECT_AFTER probes.

Regression of `make chaos` seed 3: on a starved machine one health probe of a serving substation
took longer than its timeout, the checker ejected it, and cars were turned away with room left.
The silent host here is a real listening socket that never answers (a hung peer); the refusing
one is a port nobody listens on.
"""

from __future__ import annotations

import socket

from balancer import keys
from balancer.health import HealthChecker
from balancer.upstream import Upstream
from common.procs import free_port


def test_a_silent_substation_is_ejected_only_after_eject_after_probes(redis_server):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # connections complete in the backlog; no request is ever answered
    try:
        upstream = Upstream({"silent": f"http://127.0.0.1:{hung.getsockname()[1]}",
                             "refusing": f"http://127.0.0.1:{free_port()}"}, timeout_s=0.2)
        client = redis_server.client()
        checker = HealthChecker(client, upstream, interval_s=1.0, eject_after=3)
        first = checker.check_once()
        assert first == {"silent": True, "refusing": False}  # a refusal is a definite no
        assert checker.check_once()["silent"] is True
        assert checker.check_once()["silent"] is False  # the third silence in a row ejects
        assert client.hget(keys.HEALTH, "silent") == "0"
        assert client.hget(keys.SILENT, "silent") == "3"
        assert checker.check_once()["silent"] is False  # stays out until it answers
    finally:
        hung.close()
