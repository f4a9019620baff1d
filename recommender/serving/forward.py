"""A reader's side of the one writer: the requests that write or encode are handed to the writer
process over its Unix socket, and its answer is sent back as it is.

`recommender serve` runs one writer (the whole app, with the encoder) listening on a Unix socket
and N readers (no encoder, no torch). A reader answers every read itself from the store and its
mirror; `Forward` sends it the writes (`PUT`/`DELETE /articles/{id}`, `POST`/`DELETE
/articles`) and the text queries (`POST /related`, which need the encoder) unchanged: the
writer checks the key and the body, queues the encoding (503 with Retry-After when its queue is
full) and answers in the API's one error shape. HTTP over the socket, because the writer already
speaks the API: one set of routes, checks and errors, and nothing to translate.

When the writer cannot be reached (it is starting, or restarting after a crash), the answer is
503 with Retry-After. A connection refused means nothing was written; a connection lost after
the request was sent means the outcome is unknown, and the message says so: writes are keyed, so
sending the same PUT or DELETE again is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from recommender.serving.encodequeue import RETRY_AFTER_SECONDS
from recommender.serving.errors import error_response

log = logging.getLogger("recommender.serving")

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"host"})
NOT_FORWARDED = HOP_BY_HOP | {b"content-length"}  # httpx states the length of what it sends
WRITER_BASE = "http://writer"
READY_TIMEOUT_SECONDS = 2.0


def writer_client(socket_path: Path) -> httpx.AsyncClient:
    """A client of the writer's API over its Unix socket (no timeout: a bulk write of a thousand
    articles encodes for minutes; the caller's own timeout governs)."""
    transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
    return httpx.AsyncClient(transport=transport, base_url=WRITER_BASE, timeout=None)


def writer_readiness(socket_path: Path) -> tuple[int, dict[str, Any]]:
    """The writer's /readyz: (status, body); (503, the reason) when it cannot be reached."""
    transport = httpx.HTTPTransport(uds=str(socket_path))
    try:
        with httpx.Client(transport=transport, timeout=READY_TIMEOUT_SECONDS) as client:
            answer = client.get(f"{WRITER_BASE}/readyz")
        body: dict[str, Any] = answer.json()
        return answer.status_code, body
    except (httpx.HTTPError, ValueError) as exc:
        return 503, {"error": f"the writer is not reachable ({type(exc).__name__})"}


class Forward:
    """ASGI middleware: requests matching one of `routes` go to the writer; the others on."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], socket_path: Path) -> None:
        self.app = app
        self.routes = list(routes)
        self.socket_path = socket_path
        self._client: httpx.AsyncClient | None = None

    def _route(self, scope: Scope) -> Scope | None:
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return child
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        child = self._route(scope) if scope["type"] == "http" else None
        if child is None:
            await self.app(scope, receive, send)
            return
        scope.update(child)  # the route template, for the metrics and the access log
        await self._forward(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if self._client is not None:
                await self._client.aclose()

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole request body, or None when the client went away before sending it all
        (nothing is handed over then: a cut body must never reach the writer)."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._body(receive)
        if body is None:
            return
        if self._client is None:
            self._client = writer_client(self.socket_path)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in NOT_FORWARDED]
        query = scope.get("query_string", b"")
        url = scope.get("raw_path") or scope["path"].encode()
        request = self._client.build_request(
            scope["method"],
            (url + (b"?" + query if query else b"")).decode("latin-1"),
            headers=headers,
            content=body,
        )
        try:
            answer = await self._client.send(request, stream=True)
        except httpx.ConnectError as exc:
            await self._unavailable(scope, receive, send, exc, "nothing was written")
            return
        except httpx.TransportError as exc:
            await self._unavailable(
                scope, receive, send, exc, "the outcome is unknown: sending it again is safe"
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [
                        (k, v) for k, v in answer.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    async def _unavailable(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception, outcome: str
    ) -> None:
        log.error("writer not reachable at %s: %r", self.socket_path, exc)
        response = error_response(
            503, f"the writer process is not available (starting or restarting): {outcome}"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        await response(scope, receive, send)
