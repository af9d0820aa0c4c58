"""Is a service usable? Redis answers PING, HTTP services answer 200 on their health path.

`python -m stack.health URL` is the container health check (stdlib only, exit 0 when healthy).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from stack.services import REDIS, Service


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def healthy(svc: Service, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    if svc.kind == REDIS:
        import redis

        try:
            client = redis.Redis(host=host, port=svc.port, socket_timeout=timeout,
                                 socket_connect_timeout=timeout)
            return bool(client.ping())
        except redis.RedisError:
            return False
    return http_ok(f"http://{host}:{svc.port}{svc.health_path}", timeout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stack.health URL")
    sys.exit(0 if http_ok(sys.argv[1]) else 1)
