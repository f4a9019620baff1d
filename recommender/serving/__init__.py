"""HTTP plumbing around the API, installed by `install(app, settings)`: one error shape and its
documentation, request size limits (413/414), CORS for the site's origins, security headers,
Prometheus metrics, JSON access logs, self-hosted API docs and the encoder's bounded queue.

Middleware order, outermost first: observe (metrics and access log), security headers, CORS,
size limits, HEAD as GET, and in a reader the hand-over of writes to the writer
(`recommender.serving.forward`); so a refused request is still counted and logged, and carries
the same headers. (The `/metrics` route itself is the API's, in `recommender.api.ops`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from starlette.routing import BaseRoute

from recommender.config import Settings
from recommender.serving.accesslog import configure_access_log
from recommender.serving.cors import install_cors
from recommender.serving.docs import add_docs
from recommender.serving.encodequeue import EncodeQueue
from recommender.serving.errors import document_errors, install_error_handlers
from recommender.serving.forward import Forward
from recommender.serving.head import HeadAsGet
from recommender.serving.headers import SecurityHeaders
from recommender.serving.limits import SizeLimits
from recommender.serving.metrics import Metrics, Served
from recommender.serving.observe import Observe

# uvicorn must pass a long request line on to SizeLimits (to answer 414) instead of
# dropping the connection at h11's 16 KiB default; beyond this uvicorn answers 400 itself.
MAX_REQUEST_HEAD_BYTES = 1 << 20


def install(
    app: FastAPI, settings: Settings, served: Served, writer_routes: Sequence[BaseRoute] = ()
) -> None:
    """Everything above, on an app whose routes are already declared; the gauges read `served`.
    In a reader (`settings.role`), `writer_routes` are handed to the writer (`Forward`,
    innermost); the writer answers only what readers hand it, which they count and log, so
    it has no `Observe` of its own."""
    metrics = Metrics()
    metrics.track(served)
    app.state.metrics = metrics
    app.state.encode_queue = EncodeQueue(settings.encode_queue_depth, metrics)
    install_error_handlers(app)
    add_docs(app)
    document_errors(app)
    if settings.role == "reader" and settings.writer_socket is not None:
        app.add_middleware(Forward, routes=writer_routes, socket_path=settings.writer_socket)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        SizeLimits,
        max_body_bytes=settings.max_body_bytes,
        max_url_bytes=settings.max_url_bytes,
        max_bulk_bytes=settings.max_bulk_bytes,
    )
    install_cors(app, settings)
    app.add_middleware(SecurityHeaders)
    if settings.role == "writer":
        return
    if settings.access_log:
        configure_access_log()
    app.add_middleware(Observe, metrics=metrics, access_log=settings.access_log)


def encode_queue(request: Request) -> EncodeQueue:
    """Dependency: the app's encoder queue."""
    queue: EncodeQueue = request.app.state.encode_queue
    return queue


def uvicorn_options() -> dict[str, Any]:
    """What `recommender serve` passes to uvicorn beside host, port and workers."""
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
        "server_header": False,
        "access_log": False,
    }
