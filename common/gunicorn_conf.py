"""Gunicorn settings for every GridClock service (`gunicorn -c python:common.gunicorn_conf ...`).

Environment: PORT (required), BIND_HOST (127.0.0.1), WEB_CONCURRENCY (workers, 2),
GUNICORN_THREADS (8), PROMETHEUS_MULTIPROC_DIR (a private temp dir when unset).
"""

import os
import shutil
import tempfile

bind = f"{os.environ.get('BIND_HOST', '127.0.0.1')}:{os.environ['PORT']}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 5
keepalive = 30
accesslog = None  # request lines could carry tokens in query strings; keep them out of logs
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# Multiprocess metrics: workers must see the directory before prometheus_client is imported.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_own_metrics_dir = not _metrics_dir
if _own_metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix=f"gridclock-metrics-{os.environ['PORT']}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    # Stale files from a previous run would be summed into this run's counters.
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def post_worker_init(worker):
    # Gunicorn answers requests it cannot parse (request line over limit_request_line, headers
    # too large, malformed) itself, with an HTML page; every GridClock error is JSON.
    from gunicorn import util

    util.write_error = _write_json_error


def _write_json_error(sock, status_int, reason, mesg):
    import json

    from gunicorn import util

    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin1") + body)


def child_exit(server, worker):
    from prometheus_client import multiprocess  # imported late: env must be set first

    multiprocess.mark_process_dead(worker.pid)

# Gunicorn 25+ opens a control socket at one fixed per-user path; several services on one
# machine would fight over it, and nothing here uses it.
control_socket_disable = True
