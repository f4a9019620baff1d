"""The HTTP API the website calls for related stories."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.ranking.related import (
    MAX_K,
    ArticleNotFound,
    EncoderUnavailable,
    RelatedItem,
    RelatedQuery,
    RelatedService,
)
from recommender.storage.collection import Collection, IndexUnavailable

log = logging.getLogger("recommender.api")

MAX_TEXT_CHARS = 100_000
CACHE_SECONDS = 300


class StoryOut(BaseModel):
    """What the site renders for a story."""

    id: str
    url: str | None
    title: str
    lead: str
    published: datetime | None
    section: str | None
    source: str | None


class ArticleOut(StoryOut):
    tags: list[str]

    @classmethod
    def of(cls, a: Article) -> ArticleOut:
        return cls.model_validate(a.model_dump(include=set(cls.model_fields)))


class RelatedItemOut(StoryOut):
    score: float
    reason: str
    parts: dict[str, float]

    @classmethod
    def of(cls, item: RelatedItem) -> RelatedItemOut:
        return cls(
            **item.article.model_dump(include=set(StoryOut.model_fields)),
            score=round(item.score, 6),
            reason=item.reason,
            parts={k: round(v, 6) for k, v in item.parts.items()},
        )


class RelatedOut(BaseModel):
    article_id: str | None = Field(description="The article the list is for; null for text queries")
    model_id: str
    count: int
    items: list[RelatedItemOut]


class TextQuery(RelatedQuery):
    """An article that is not indexed yet, with the same parameters as the GET endpoint."""

    title: str = Field(default="", max_length=2_000)
    lead: str = Field(default="", max_length=5_000)
    body: str = Field(default="", max_length=MAX_TEXT_CHARS)
    published: datetime | None = Field(
        default=None, description="its publication time, for freshness (default: none)"
    )
    exclude: list[str] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _has_text(self) -> TextQuery:
        if not (self.title.strip() or self.lead.strip() or self.body.strip()):
            raise ValueError("title, lead and body are all empty: give the article's text")
        return self


class ErrorOut(BaseModel):
    error: str


class State:
    """The loaded index, its service, and an LRU cache of answers by article id and parameters
    (the index does not change while it is loaded, so an answer stays right until a restart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: RelatedService | None = None
        self.error: str | None = None
        self.related_for_id = lru_cache(maxsize=settings.response_cache_size)(self._related_for_id)

    def _related_for_id(self, article_id: str, query_json: str) -> RelatedOut:
        assert self.service is not None
        items = self.service.for_id(article_id, RelatedQuery.model_validate_json(query_json))
        return RelatedOut(
            article_id=article_id,
            model_id=self.service.collection.model_id,
            count=len(items),
            items=[RelatedItemOut.of(i) for i in items],
        )

    def load(self) -> None:
        settings = self.settings
        try:
            collection = Collection.load(settings.index_dir, model_id=model_id_for(settings))
        except (IndexUnavailable, OSError, ValueError) as exc:
            self.error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        encoder = None
        try:
            encoder = ArticleEncoder.from_settings(settings, use_cache=False)
        except (OSError, ValueError) as exc:
            log.error("encoder not loaded, POST /related will answer 503: %s", exc)
        self.service = RelatedService(collection, encoder, settings.ranking)
        self.error = None


def get_state(request: Request) -> State:
    state: State = request.app.state.recommender
    return state


def get_service(state: Annotated[State, Depends(get_state)]) -> RelatedService:
    if state.service is None:
        raise HTTPException(status_code=503, detail=f"index not loaded: {state.error}")
    return state.service


def _etag(request: Request, service: RelatedService) -> str:
    key = (
        f"{service.collection.manifest.created.isoformat()}|{request.url.path}|{request.url.query}"
    )
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def create_app(settings: Settings | None = None) -> FastAPI:
    state = State(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.load()
        yield
        if state.service is not None:
            state.service.collection.close()

    app = FastAPI(
        title="Related stories",
        version="1.0",
        description="Related stories for Bulgarian news articles.",
        lifespan=lifespan,
    )
    app.state.recommender = state

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
            messages.append(f"{loc}: {str(e['msg']).removeprefix('Value error, ')}")
        return JSONResponse({"error": "; ".join(messages)}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
    def readyz(st: Annotated[State, Depends(get_state)]) -> dict[str, object]:
        """The index is loaded and requests can be answered."""
        if st.service is None:
            raise HTTPException(status_code=503, detail=f"index not loaded: {st.error}")
        c = st.service.collection
        return {"status": "ready", "articles": len(c), "model_id": c.model_id}

    @app.get("/articles/{article_id}", responses={404: {"model": ErrorOut}})
    def get_article(
        article_id: str, service: Annotated[RelatedService, Depends(get_service)]
    ) -> ArticleOut:
        article = service.collection.store.get(article_id)
        if article is None:
            raise HTTPException(status_code=404, detail=f"article '{article_id}' is not indexed")
        return ArticleOut.of(article)

    @app.get(
        "/articles/{article_id}/related",
        response_model=RelatedOut,
        responses={
            304: {"description": "Not modified (ETag)"},
            404: {"model": ErrorOut},
            422: {"model": ErrorOut},
        },
    )
    def related_by_id(
        article_id: str,
        request: Request,
        response: Response,
        service: Annotated[RelatedService, Depends(get_service)],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many stories")] = 5,
        section: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        exclude: Annotated[list[str] | None, Query(max_length=1_000)] = None,
        stage: Literal["final", "ranked"] = "final",
        method: Literal["hybrid", "dense"] = "hybrid",
        diversity: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        min_score: float | None = None,
        freshness_days: Annotated[float | None, Query(ge=0.0)] = None,
    ) -> RelatedOut | Response:
        """Related stories of an indexed article, from its stored vector (nothing is encoded)."""
        etag = _etag(request, service)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        q = RelatedQuery(
            k=k,
            section=section,
            source=source,
            since=since,
            until=until,
            exclude=exclude or [],
            stage=stage,
            method=method,
            diversity=diversity,
            min_score=min_score,
            freshness_days=freshness_days,
        )
        try:
            result = state.related_for_id(article_id, q.model_dump_json())
        except ArticleNotFound:
            raise HTTPException(
                status_code=404, detail=f"article '{article_id}' is not indexed"
            ) from None
        response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
        response.headers["ETag"] = etag
        return result

    @app.post("/related", responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    def related_by_text(
        body: TextQuery, service: Annotated[RelatedService, Depends(get_service)]
    ) -> RelatedOut:
        """Related stories of an article that is not indexed (its text is encoded)."""
        q = RelatedQuery.model_validate(body.model_dump(include=set(RelatedQuery.model_fields)))
        try:
            items = service.for_text(body.title, body.lead, body.body, q, published=body.published)
        except EncoderUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return RelatedOut(
            article_id=None,
            model_id=service.collection.model_id,
            count=len(items),
            items=[RelatedItemOut.of(i) for i in items],
        )

    return app
