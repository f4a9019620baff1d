"""`create_app`: the API's routers, the served state and the HTTP plumbing of
`recommender.serving`, in one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.routing import BaseRoute

from recommender.api import ops, reads, writes
from recommender.api.box import box_router
from recommender.api.state import State
from recommender.articles import MAX_ID_LENGTH, Article, id_pattern
from recommender.config import Settings
from recommender.engine import IndexUnavailable
from recommender.serving import install
from recommender.serving.encodequeue import RETRY_AFTER_SECONDS
from recommender.serving.errors import error_response
from recommender.storage.store import StoreFull

log = logging.getLogger("recommender.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    state = State(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.load()
        yield
        state.close()

    app = FastAPI(
        title="Related stories",
        version="2.0",
        description="Related stories for Bulgarian news articles: read, publish, unpublish. "
        'Every error is `{"error": "..."}`, naming the parameter or field.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.recommender = state
    app.include_router(ops.router)
    app.include_router(reads.router)
    app.include_router(writes.router)
    app.include_router(box_router(state))
    app.add_exception_handler(StoreFull, _store_full)
    app.add_exception_handler(IndexUnavailable, _index_unavailable)
    _complete_schema(app)
    install(app, state.settings, state, writer_routes())
    return app


def writer_routes() -> list[BaseRoute]:
    """What a reader hands to the writer: every write, and the text query (it encodes)."""
    text_query = [
        r for r in reads.router.routes if getattr(r, "endpoint", None) is reads.related_by_text
    ]
    return [*writes.router.routes, *text_query]


async def _store_full(request: Request, exc: Exception) -> Response:
    log.error("write refused: %s", exc)
    request.app.state.metrics.writes_refused.labels("store_full").inc()
    return error_response(507, str(exc))


async def _index_unavailable(request: Request, exc: Exception) -> Response:
    """A write while the index cannot be followed (a damaged new generation, a switch that
    kept interrupting it): nothing was written; the reads go on from the served generation."""
    log.error("write refused: %s", exc)
    request.app.state.metrics.writes_refused.labels("index_unavailable").inc()
    response = error_response(503, str(exc))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _complete_schema(app: FastAPI) -> None:
    """What the routes cannot declare: the `Article` input schema the bulk endpoint's items
    are checked against, and the rule of a written id (`id_pattern`, built from the Unicode
    tables when the schema is first asked for) on `PUT /articles/{article_id}`."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Article"] = (
                Article.model_json_schema()
            )
            for param in schema["paths"]["/articles/{article_id}"]["put"]["parameters"]:
                if param["name"] == "article_id":
                    param["schema"] |= {"maxLength": MAX_ID_LENGTH, "pattern": id_pattern()}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
