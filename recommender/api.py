"""The HTTP API the website calls for related stories."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.ranking.related import (
    ArticleNotFound,
    EncoderUnavailable,
    IsoDateTime,
    RelatedItem,
    RelatedQuery,
    RelatedService,
)
from recommender.serving import encode_queue, install
from recommender.serving.encodequeue import RETRY_AFTER_SECONDS, EncodeQueue, EncodeQueueFull
from recommender.serving.errors import ErrorOut, error_responses
from recommender.serving.headers import cache_control
from recommender.storage.collection import Collection, IndexUnavailable
from recommender.text.clean import TEXT_PATTERN, has_text
from recommender.web import WebSource, web_router

log = logging.getLogger("recommender.api")

MAX_TEXT_CHARS = 100_000
TEXT_FIELDS = ("title", "lead", "body")
ITEM_LINKS = {
    name: {
        "operationRef": "#/paths/~1articles~1{article_id}" + path.replace("/", "~1") + "/get",
        "parameters": {"article_id": "$response.body#/items/0/id"},
    }
    for name, path in (
        ("FirstItem", ""),
        ("FirstItemRelated", "/related"),
        ("FirstItemBox", "/related.html"),
    )
}


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
    """An article that is not indexed yet, with the same parameters as the GET endpoint. At
    least one of title, lead and body holds a letter or digit (the schema says so too)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [f], "properties": {f: {"pattern": TEXT_PATTERN}}} for f in TEXT_FIELDS
            ]
        }
    )

    title: str = Field(default="", max_length=2_000)
    lead: str = Field(default="", max_length=5_000)
    body: str = Field(default="", max_length=MAX_TEXT_CHARS)
    published: IsoDateTime | None = Field(
        default=None,
        description="its publication time, for freshness (default: none); no zone means UTC",
    )

    @model_validator(mode="after")
    def _has_text(self) -> TextQuery:
        if not any(has_text(getattr(self, f)) for f in TEXT_FIELDS):
            raise ValueError(
                "title, lead and body have no letter or digit: give the article's text"
            )
        return self


class State:
    """The loaded index, its service, and an LRU cache of answers by article id and parameters
    (the index does not change while it is loaded, so an answer stays right until a restart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: RelatedService | None = None
        self.error: str | None = None
        self.encoder_error: str | None = None
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
            self.encoder_error = None
        except Exception as exc:  # any failure to load a model: serve GETs, report not ready
            self.encoder_error = f"{type(exc).__name__}: {exc}"
            log.error("encoder not loaded, POST /related will answer 503: %s", exc)
        self.service = RelatedService(collection, encoder, settings.ranking)
        self.error = None

    def index_size(self) -> int:
        return len(self.service.collection) if self.service is not None else 0


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
        description="Related stories for Bulgarian news articles. Every error is "
        '`{"error": "..."}`, naming the parameter or field.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.recommender = state

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
    def readyz(st: Annotated[State, Depends(get_state)]) -> dict[str, object]:
        """The index and the encoder are loaded and every request can be answered."""
        if st.service is None:
            raise HTTPException(status_code=503, detail=f"index not loaded: {st.error}")
        if st.service.encoder is None:
            raise HTTPException(status_code=503, detail=f"encoder not loaded: {st.encoder_error}")
        c = st.service.collection
        return {"status": "ready", "articles": len(c), "model_id": c.model_id}

    @app.get("/articles/{article_id}", responses=error_responses(503))
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
        responses=error_responses(503, other={304: {"description": "Not modified (ETag)"}}),
    )
    def related_by_id(
        article_id: str,
        request: Request,
        response: Response,
        service: Annotated[RelatedService, Depends(get_service)],
        q: Annotated[RelatedQuery, Query()],
    ) -> RelatedOut | Response:
        """Related stories of an indexed article, from its stored vector (nothing is encoded)."""
        etag = _etag(request, service)
        if request.headers.get("if-none-match") == etag:
            return Response(
                status_code=304,
                headers={"ETag": etag, "Cache-Control": cache_control(state.settings)},
            )
        try:
            result = state.related_for_id(article_id, q.model_dump_json())
        except ArticleNotFound:
            raise HTTPException(
                status_code=404, detail=f"article '{article_id}' is not indexed"
            ) from None
        response.headers["Cache-Control"] = cache_control(state.settings)
        response.headers["ETag"] = etag
        return result

    @app.post("/related", responses=error_responses(503, other={200: {"links": ITEM_LINKS}}))
    async def related_by_text(
        body: TextQuery,
        service: Annotated[RelatedService, Depends(get_service)],
        queue: Annotated[EncodeQueue, Depends(encode_queue)],
    ) -> RelatedOut:
        """Related stories of an article that is not indexed (its text is encoded). Text queries
        wait in a short queue for the encoder; when it is full the answer is 503 with
        Retry-After."""
        q = RelatedQuery.model_validate(body.model_dump(include=set(RelatedQuery.model_fields)))
        try:
            items = await queue.run(
                lambda: service.for_text(
                    body.title, body.lead, body.body, q, published=body.published
                )
            )
        except EncoderUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except EncodeQueueFull as exc:
            raise HTTPException(
                status_code=503, detail=str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        return RelatedOut(
            article_id=None,
            model_id=service.collection.model_id,
            count=len(items),
            items=[RelatedItemOut.of(i) for i in items],
        )

    def ready_service() -> RelatedService:
        if state.service is None:
            raise HTTPException(status_code=503, detail=f"index not loaded: {state.error}")
        return state.service

    def related_items(article_id: str, q: RelatedQuery) -> list[RelatedItemOut]:
        """The one call through which the HTML box gets its list."""
        ready_service()
        return state.related_for_id(article_id, q.model_dump_json()).items

    def latest(n: int) -> list[Article]:
        store = ready_service().collection.store
        articles = store.get_rows(range(len(store)), with_body=False)
        dated = [a for a in articles if a.published is not None]
        return sorted(dated, key=lambda a: (a.published, a.id), reverse=True)[:n]

    source = WebSource(
        related=related_items,
        article=lambda article_id: ready_service().collection.store.get(article_id),
        latest=latest,
    )
    app.include_router(web_router(source, state.settings))
    install(app, state.settings, index_size=state.index_size)
    return app
