"""Response headers: security headers on every response, the Cache-Control a CDN uses, and
conditional answers (`conditional`: a content ETag, 304 for a matching `If-None-Match`), shared
by the JSON list, the HTML box and the static files."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.config import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def cache_control(settings: Settings) -> str:
    """For a cacheable answer: fresh for `cache_max_age` seconds, then served stale while the
    CDN revalidates, and served stale when the service errs or is down."""
    return (
        f"public, max-age={settings.cache_max_age}, "
        f"stale-while-revalidate={settings.cache_stale_while_revalidate}, "
        f"stale-if-error={settings.cache_stale_if_error}"
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def content_etag(body: bytes) -> str:
    """A strong ETag that is the hash of the answer: it changes exactly when the answer does."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` (a list, `*`, weak tags) with our tag."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def conditional(
    request: Request, body: bytes, media_type: str, headers: Mapping[str, str]
) -> Response:
    """`body` with its content ETag and `headers` (its Cache-Control, ...); 304 with the same
    headers and no body when the request's `If-None-Match` names that ETag."""
    etag = content_etag(body)
    sent = {"ETag": etag, **headers}
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=sent)
    return Response(body, media_type=media_type, headers=sent)
