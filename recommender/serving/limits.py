"""Request size limits, answered before the application reads anything: 414 for a URL longer
than `max_url_bytes`, 413 for a body longer than `max_body_bytes` (from its Content-Length at
once, or while a chunked body streams in: reading stops at the limit). Bulk writes (`POST
/articles`) have their own, larger limit, `max_bulk_bytes`."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.serving.errors import error_response

BULK_PATH = "/articles"


class SizeLimits:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_url_bytes: int, max_bulk_bytes: int
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_bytes
        self.max_bulk = max_bulk_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        url_bytes = len(raw_path) + len(scope.get("query_string", b""))
        if url_bytes > self.max_url:
            message = f"URL too long: {url_bytes} bytes, at most {self.max_url}"
            await error_response(414, message)(scope, receive, send)
            return
        length = _content_length(scope)
        if length is None:
            await error_response(400, "Content-Length: not a number")(scope, receive, send)
            return
        bulk = scope["method"] == "POST" and scope["path"] == BULK_PATH
        limit = self.max_bulk if bulk else self.max_body
        if length > limit:
            await error_response(413, _too_large(length, limit))(scope, receive, send)
            return
        await self._streamed(scope, receive, send, limit)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await error_response(413, _too_large(received, limit))(scope, receive, send)


def _too_large(length: int, limit: int) -> str:
    return f"body too large: {length} bytes, at most {limit}"


def _content_length(scope: Scope) -> int | None:
    """The declared body length (0 when there is none), or None when it is not a number."""
    try:
        return max(0, int(Headers(scope=scope).get("content-length", 0)))
    except ValueError:
        return None
