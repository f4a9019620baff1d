"""CORS for the configured site origins only (`RECOMMENDER_CORS_ORIGINS`): pages on those origins
may call the read API from the browser; preflight requests are answered, and a refused
preflight gets the service's error shape."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from recommender.config import Settings
from recommender.serving.errors import error_response

METHODS = ["GET", "HEAD", "POST"]
HEADERS = ["Content-Type", "If-None-Match"]
EXPOSED = ["ETag"]
PREFLIGHT_MAX_AGE = 600


class SiteCORS(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-")}
        return error_response(400, bytes(response.body).decode(), headers | {"Vary": "Origin"})


def install_cors(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_origins:
        return
    app.add_middleware(
        SiteCORS,
        allow_origins=settings.cors_origins,
        allow_methods=METHODS,
        allow_headers=HEADERS,
        expose_headers=EXPOSED,
        max_age=PREFLIGHT_MAX_AGE,
    )
