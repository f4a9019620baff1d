"""One middleware that watches every answer: its status, its size and how long it took, for the
Prometheus metrics and (when on) the JSON access log."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.serving.accesslog import log_request
from recommender.serving.metrics import Metrics, route_of


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, size = 500, 0

        async def observe(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe(route_of(scope), scope["method"], status, seconds)
            if self.access_log:
                log_request(scope, status, seconds, size)
