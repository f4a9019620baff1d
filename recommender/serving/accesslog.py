"""Structured access logs: one JSON object a line per request on the `recommender.access`
logger (time, method, path, query, route, status, duration, response bytes, client,
user agent). uvicorn's own access log is turned off so a request is logged once."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.serving.metrics import route_of

log = logging.getLogger("recommender.access")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        entry |= fields if isinstance(fields, dict) else {"message": record.getMessage()}
        return orjson.dumps(entry).decode()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stderr (which a test runner may swap), not the one at start."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_access_log() -> None:
    """JSON lines on stderr, once per process."""
    if any(isinstance(h, _StderrHandler) for h in log.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(JSONFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            client = scope.get("client")
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "query": bytes(scope.get("query_string", b"")).decode("latin-1"),
                "route": route_of(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "bytes": size,
                "client": client[0] if client else None,
                "user_agent": _header(scope, b"user-agent"),
            }
            log.info("request", extra={"fields": fields})
