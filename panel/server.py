"""The panel as served by the stack: `streamlit run panel/server.py`.

Streamlit's page (panel/app.py) plus the `GET /health` and `GET /metrics` that every GridClock
HTTP service answers. The panel has no Redis of its own: it is healthy when it serves.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from panel import metrics  # noqa: E402


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "panel"})


async def metrics_view(request: Request) -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


app = st.App("app.py", routes=[Route("/health", health), Route("/metrics", metrics_view)])
