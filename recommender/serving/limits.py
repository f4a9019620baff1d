"""Request size limits, answered before the application reads anything: 414 for a URL longer
than `max_url_bytes`, 413 for a body longer than `max_body_bytes` (from its Content-Length at
once, or while a chunked body streams in: reading stops at the limit)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.serving.errors import error_response


class SizeLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_url_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_bytes

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
        if length > self.max_body:
            await error_response(413, self._too_large(length))(scope, receive, send)
            return
        await self._streamed(scope, receive, send)

    def _too_large(self, length: int) -> str:
        return f"body too large: {length} bytes, at most {self.max_body}"

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                if received > self.max_body:
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
            await error_response(413, self._too_large(received))(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length (0 when there is none), or None when it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return 0
