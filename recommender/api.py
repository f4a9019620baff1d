"""The HTTP API the website calls: related stories to read, articles to publish and unpublish.

The website's read, `GET /articles/{id}/related` with default parameters, is a lookup of the
list stored when the article (or a neighbour) was written: nothing is encoded or ranked. Other
parameters are computed per request from the in-memory mirror, and their answers are kept in a
cache bounded in bytes. Writes (`PUT`, `DELETE`, `POST /articles`) need a key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from cachetools import LRUCache
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, model_validator

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import EncoderUnavailable, Engine, IndexUnavailable, WriteResult
from recommender.inputs import validation_reason
from recommender.ranking.related import ArticleNotFound, RelatedItem, RelatedQuery

log = logging.getLogger("recommender.api")

MAX_TEXT_CHARS = 100_000
MAX_WRITE_BYTES = 20 * 2**20
CACHE_SECONDS = 300
JSON = "application/json"
ARTICLE_SCHEMA = "#/components/schemas/Article"


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


class ArticleIn(BaseModel):
    """An article to publish: the fields of the input format (`id` comes from the path)."""

    title: str
    lead: str = ""
    body: str = ""
    published: datetime | str | None = None
    url: str | None = None
    section: str | None = None
    tags: list[str] | str = Field(default_factory=list)
    source: str | None = None


class WriteOut(BaseModel):
    """The outcome of one write: `created`, `updated`, `unchanged` (same content: nothing
    re-encoded), `deleted`, `not_found` or `rejected` (with the reason)."""

    id: str | None
    status: Literal["created", "updated", "unchanged", "deleted", "not_found", "rejected"]
    seq: int | None = Field(default=None, description="the change's number in the log")
    reason: str | None = None

    @classmethod
    def of(cls, r: WriteResult) -> WriteOut:
        return cls(id=r.id, status=r.status, seq=r.seq)


class BulkOut(BaseModel):
    results: list[WriteOut]
    counts: dict[str, int]


class DeleteIn(BaseModel):
    ids: list[str] = Field(min_length=1, description="ids to unpublish")


class ErrorOut(BaseModel):
    error: str


def _bulk(results: list[WriteOut]) -> BulkOut:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return BulkOut(results=results, counts=counts)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` (a list, `*`, weak tags) with our tag."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class State:
    """The served engine, the encoder, and a byte-bounded LRU cache of computed answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.error: str | None = None
        self.encoder_error: str | None = None
        self.cache: LRUCache[tuple[object, ...], bytes] = LRUCache(
            maxsize=max(settings.response_cache_bytes, 1), getsizeof=len
        )

    def load(self) -> None:
        settings = self.settings
        encoder = None
        try:
            encoder = ArticleEncoder.from_settings(settings)
        except (OSError, ValueError) as exc:
            self.encoder_error = str(exc)
            log.error("encoder not loaded, writes and POST /related will answer 503: %s", exc)
        try:
            self.engine = Engine(settings.index_dir, settings, encoder, model_id_for(settings))
        except (IndexUnavailable, OSError, ValueError) as exc:
            self.error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        self.engine.start_following()

    def cached(self, key: tuple[object, ...], compute: Callable[[], bytes]) -> bytes:
        body = self.cache.get(key)
        if body is None:
            body = compute()
            if self.settings.response_cache_bytes and len(body) <= self.cache.maxsize:
                self.cache[key] = body
        return body


def get_state(request: Request) -> State:
    state: State = request.app.state.recommender
    return state


def get_engine(state: Annotated[State, Depends(get_state)]) -> Engine:
    if state.engine is None:
        raise HTTPException(status_code=503, detail=f"index not loaded: {state.error}")
    return state.engine


def require_writer(request: Request, state: Annotated[State, Depends(get_state)]) -> None:
    """Writes need `Authorization: Bearer KEY` with a key of `RECOMMENDER_API_KEYS`."""
    keys = state.settings.write_keys()
    if not keys:
        raise HTTPException(
            status_code=403,
            detail="writes are disabled: set RECOMMENDER_API_KEYS (comma-separated keys) and "
            "send 'Authorization: Bearer KEY'",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(given.strip().encode(), k.encode()) for k in keys
    ):
        raise HTTPException(
            status_code=401,
            detail="a write needs 'Authorization: Bearer KEY' with a valid key",
            headers={"WWW-Authenticate": "Bearer"},
        )


Writer = Depends(require_writer)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 413, 422, 503)
}


def _related_body(article_id: str | None, model_id: str, items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {"article_id": article_id, "model_id": model_id, "count": len(items), "items": items}
    )


def stored_answer(engine: Engine, article_id: str, k: int) -> bytes | None:
    """The body of the website's read (default parameters): the first `k` items of the stored
    list, or None for an article that is not indexed."""
    stored = engine.stored_list(article_id)
    if stored is None:
        return None
    return _related_body(article_id, engine.model_id, orjson.loads(stored)[:k])


def _records(items: list[RelatedItem]) -> list[dict[str, Any]]:
    return [i.record() for i in items]


def _not_indexed(article_id: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"article '{article_id}' is not indexed")


async def _json_items(request: Request, limit: int) -> list[Any]:
    """A bulk body: a JSON array, or NDJSON (one object a line)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WRITE_BYTES:
        raise HTTPException(status_code=413, detail=f"body over {MAX_WRITE_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_WRITE_BYTES:
            raise HTTPException(status_code=413, detail=f"body over {MAX_WRITE_BYTES} bytes")
    text = bytes(raw).strip()
    try:
        if text.startswith(b"["):
            items = orjson.loads(text)
        else:
            items = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            status_code=422, detail=f"body: invalid JSON or NDJSON: {exc}"
        ) from None
    if not isinstance(items, list):
        raise HTTPException(status_code=422, detail="body: expected a JSON array or NDJSON")
    if len(items) > limit:
        raise HTTPException(
            status_code=413, detail=f"body: {len(items)} articles, at most {limit} per request"
        )
    return items


def create_app(settings: Settings | None = None) -> FastAPI:
    state = State(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.load()
        yield
        if state.engine is not None:
            state.engine.close()

    app = FastAPI(
        title="Related stories",
        version="2.0",
        description="Related stories for Bulgarian news articles: read, publish, unpublish.",
        lifespan=lifespan,
    )
    app.state.recommender = state

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

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
        """The index and the encoder are loaded: reads, writes and text queries can be served."""
        if st.engine is None:
            raise HTTPException(status_code=503, detail=f"index not loaded: {st.error}")
        if st.encoder_error is not None:
            raise HTTPException(status_code=503, detail=f"encoder not loaded: {st.encoder_error}")
        e = st.engine
        return {
            "status": "ready",
            "articles": len(e),
            "model_id": e.model_id,
            "generation": e.gen.path.name,
            "seq": e.gen.mirror.seq,
        }

    @app.get("/articles/{article_id}", responses={404: {"model": ErrorOut}})
    def get_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> ArticleOut:
        article = engine.article(article_id)
        if article is None:
            raise _not_indexed(article_id)
        return ArticleOut.of(article)

    @app.get(
        "/articles/{article_id}/related",
        response_model=RelatedOut,
        responses={304: {"description": "Not modified (ETag)"}, **ERRORS},
    )
    async def related_by_id(
        article_id: str,
        q: Annotated[RelatedQuery, Query()],
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
    ) -> Response:
        """Related stories of an indexed article. With default parameters this is the list
        stored when the article or its neighbours were last written (a lookup); with others
        it is computed from the article's stored vector (nothing is encoded)."""
        if q.is_default(state.settings.max_k):
            answer = stored_answer(engine, article_id, q.k)
            if answer is None:
                raise _not_indexed(article_id)
            body = answer
        else:
            gen = engine.gen

            def compute() -> bytes:
                try:
                    found = engine.related(article_id, q)
                except ArticleNotFound:
                    raise _not_indexed(article_id) from None
                return _related_body(article_id, engine.model_id, _records(found))

            key = (gen.path.name, gen.mirror.seq, article_id, q.model_dump_json())
            body = await run_in_threadpool(state.cached, key, compute)
        etag = etag_of(body)
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=JSON, headers=headers)

    @app.post("/related", response_model=RelatedOut, responses=ERRORS)
    def related_by_text(
        body: TextQuery, engine: Annotated[Engine, Depends(get_engine)]
    ) -> Response:
        """Related stories of an article that is not indexed (its text is encoded)."""
        q = RelatedQuery.model_validate(body.model_dump(include=set(RelatedQuery.model_fields)))
        article = Article.model_construct(
            id="",
            title=body.title,
            lead=body.lead,
            body=body.body,
            published=body.published,
            section=None,
            tags=[],
            url=None,
            source=None,
        )
        try:
            items = engine.related_text(article, q)
        except EncoderUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return Response(_related_body(None, engine.model_id, _records(items)), media_type=JSON)

    @app.put(
        "/articles/{article_id}",
        tags=["write"],
        status_code=200,
        responses={201: {"model": WriteOut, "description": "Created"}, **ERRORS},
        dependencies=[Writer],
    )
    def put_article(
        article_id: str,
        article: ArticleIn,
        response: Response,
        engine: Annotated[Engine, Depends(get_engine)],
    ) -> WriteOut:
        """Publish or correct one article. When this returns, its related list (and the lists
        of the older articles it belongs with) are stored and served."""
        try:
            valid = Article.model_validate(
                {**article.model_dump(exclude_unset=True), "id": article_id}
            )
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=validation_reason(exc)) from None
        try:
            (result,) = engine.upsert([valid])
        except EncoderUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        if result.status == "created":
            response.status_code = 201
        return WriteOut.of(result)

    @app.delete("/articles/{article_id}", tags=["write"], responses=ERRORS, dependencies=[Writer])
    def delete_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> WriteOut:
        """Unpublish an article. When this returns, no stored list holds it."""
        (result,) = engine.delete([article_id])
        if result.status == "not_found":
            raise _not_indexed(article_id)
        return WriteOut.of(result)

    @app.post(
        "/articles",
        tags=["write"],
        responses=ERRORS,
        dependencies=[Writer],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Article"},
                        }
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_articles(
        request: Request, engine: Annotated[Engine, Depends(get_engine)]
    ) -> BulkOut:
        """Bulk upsert: a JSON array of articles or NDJSON, each with its `id`; one result per
        item, in order, with the reason for each rejected one. Valid items are written in one
        transaction even when others are rejected."""
        raw_items = await _json_items(request, state.settings.max_batch)
        results: list[WriteOut | None] = []
        valid: list[Article] = []
        for item in raw_items:
            try:
                if not isinstance(item, dict):
                    raise ValueError("expected a JSON object")
                valid.append(Article.model_validate(item))
                results.append(None)
            except ValidationError as exc:
                item_id = item.get("id") if isinstance(item, dict) else None
                results.append(
                    WriteOut(
                        id=str(item_id) if item_id is not None else None,
                        status="rejected",
                        reason=validation_reason(exc),
                    )
                )
            except ValueError as exc:
                results.append(WriteOut(id=None, status="rejected", reason=str(exc)))
        try:
            written = iter(await run_in_threadpool(engine.upsert, valid) if valid else [])
        except EncoderUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        by_id = {r.id: r for r in written}
        out = [r if r is not None else WriteOut.of(by_id[a.id]) for r, a in _align(results, valid)]
        return _bulk(out)

    @app.post("/articles/delete", tags=["write"], responses=ERRORS, dependencies=[Writer])
    def delete_articles(body: DeleteIn, engine: Annotated[Engine, Depends(get_engine)]) -> BulkOut:
        """Bulk unpublish; one result per id (`deleted` or `not_found`)."""
        if len(body.ids) > state.settings.max_batch:
            raise HTTPException(
                status_code=413,
                detail=f"ids: {len(body.ids)}, at most {state.settings.max_batch} per request",
            )
        return _bulk([WriteOut.of(r) for r in engine.delete(body.ids)])

    app.openapi_schema = None
    _add_article_schema(app)
    return app


def _align(
    results: list[WriteOut | None], valid: list[Article]
) -> list[tuple[WriteOut | None, Article]]:
    """Pair each result slot with its article (the next valid one where it was not rejected)."""
    articles = iter(valid)
    last = valid[0] if valid else Article.model_construct(id="")
    pairs = []
    for r in results:
        if r is None:
            last = next(articles)
        pairs.append((r, last))
    return pairs


def _add_article_schema(app: FastAPI) -> None:
    """Publish the `Article` input schema the bulk endpoint's body refers to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Article"] = (
                Article.model_json_schema()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
