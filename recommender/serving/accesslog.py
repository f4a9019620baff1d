"""Structured access logs: one JSON object a line per request on the `recommender.access`
logger (time, method, path, query, route, status, duration, response bytes, client,
user agent). uvicorn's own access log is turned off so a request is logged once."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson
from starlette.datastructures import Headers
from starlette.types import Scope

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


def log_request(scope: Scope, status: int, seconds: float, size: int) -> None:
    """The access-log line of one answered request."""
    client = scope.get("client")
    fields = {
        "method": scope["method"],
        "path": scope["path"],
        "query": bytes(scope.get("query_string", b"")).decode("latin-1"),
        "route": route_of(scope),
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "bytes": size,
        "client": client[0] if client else None,
        "user_agent": Headers(scope=scope).get("user-agent"),
    }
    log.info("request", extra={"fields": fields})
