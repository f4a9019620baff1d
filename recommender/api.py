"""The HTTP API the website calls: related stories to read, articles to publish and unpublish.

The website's read, `GET /articles/{id}/related` with default parameters, is a lookup of the
list stored when the article (or a neighbour) was written: nothing is encoded or ranked. Other
parameters are computed per request from the in-memory mirror, and their answers are kept in a
cache bounded in bytes. Writes (`PUT`, `DELETE`, `POST /articles`) need a key.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from cachetools import LRUCache
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recommender.articles import (
    MAX_BODY,
    MAX_LEAD,
    MAX_TITLE,
    TEXT_PATTERN,
    Article,
    Published,
    has_text,
)
from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import EncoderUnavailable, Engine, IndexUnavailable, WriteResult
from recommender.inputs import validation_reason
from recommender.ranking.related import ArticleNotFound, RelatedItem, RelatedQuery
from recommender.serving import encode_queue, install, interpreter
from recommender.serving.encodequeue import RETRY_AFTER_SECONDS, EncodeQueue, EncodeQueueFull
from recommender.serving.errors import ErrorOut, error_response, error_responses
from recommender.serving.headers import cache_control, content_etag, if_none_match
from recommender.storage.store import StoreFull
from recommender.web import WebSource, web_router

log = logging.getLogger("recommender.api")
T = TypeVar("T")

JSON = "application/json"
NDJSON = "application/x-ndjson"
ARTICLE_SCHEMA = "#/components/schemas/Article"
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

    title: str = Field(default="", max_length=MAX_TITLE)
    lead: str = Field(default="", max_length=MAX_LEAD)
    body: str = Field(default="", max_length=MAX_BODY)
    published: Published | None = Field(
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


class ArticleIn(BaseModel):
    """An article to publish: the fields of the input format (`id` comes from the path)."""

    title: str
    lead: str = ""
    body: str = ""
    published: str | None = None
    url: str | None = None
    section: str | None = None
    tags: list[str] | str = Field(default_factory=list)
    source: str | None = None


class WriteOut(BaseModel):
    """The outcome of one write: `created`, `updated`, `unchanged` (same content: nothing
    re-encoded), `deleted`, `not_found`, `rejected` (with the reason) or `duplicate` (a later
    item of the same bulk has this id: that one is acted on)."""

    id: str | None
    status: Literal[
        "created", "updated", "unchanged", "deleted", "not_found", "rejected", "duplicate"
    ]
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


def _bulk(results: list[WriteOut]) -> BulkOut:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return BulkOut(results=results, counts=counts)


def _last_positions(ids: list[str | None]) -> dict[str, int]:
    """Each id's last position: in a bulk, the occurrence that is acted on."""
    return {i: n for n, i in enumerate(ids) if i is not None}


def _duplicate(article_id: str, later: int) -> WriteOut:
    return WriteOut(
        id=article_id,
        status="duplicate",
        reason=f"item {later + 1} has the same id: the later item is the one acted on",
    )


def _reported_id(item: object) -> str | None:
    """The id a rejected bulk item is reported under: its string or integer id, if any."""
    value = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


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
        except Exception as exc:  # any failure to load a model: serve reads, report not ready
            self.encoder_error = f"{type(exc).__name__}: {exc}"
            log.error("encoder not loaded, writes and POST /related will answer 503: %s", exc)
        try:
            self.engine = Engine(settings.index_dir, settings, encoder, model_id_for(settings))
        except (IndexUnavailable, OSError, ValueError) as exc:
            self.error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        # the loaded model and mirror live as long as the process: keep them out of the
        # collector's passes; likewise a new generation's mirror once it is switched to
        interpreter.freeze()
        self.engine.on_switch = lambda: interpreter.freeze(collect=False)
        self.engine.start_following()

    def index_size(self) -> int:
        return len(self.engine) if self.engine is not None else 0

    def list_age_seconds(self) -> float | None:
        return self.engine.list_age_seconds() if self.engine is not None else None

    def log_lag(self) -> int:
        return self.engine.log_lag() if self.engine is not None else 0

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
WRITE_ERRORS = error_responses(401, 403, 503, 507)


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


def json_content(request: Request) -> None:
    """Dependency: the body is declared JSON (`application/json` or `application/*+json`);
    415 for another Content-Type or none (FastAPI would not read it as JSON)."""
    _content_type_in(request, (JSON,))


def _content_type_in(request: Request, allowed: tuple[str, ...]) -> None:
    mime = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mime in allowed or (
        JSON in allowed and mime.startswith("application/") and mime.endswith("+json")
    ):
        return
    given = f"'{mime}' is not accepted here" if mime else "missing"
    raise HTTPException(
        status_code=415, detail=f"Content-Type: {given}, send {' or '.join(allowed)}"
    )


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            status_code=422,
            detail=f"body: {where}invalid JSON: {exc.msg} at column {exc.colno}",
        ) from None


async def _json_items(request: Request, limit: int) -> list[Any]:
    """A bulk body: a JSON array, or NDJSON (one object a line; an error names its line). (Its
    size is limited before it is read, by `recommender.serving.limits`.)"""
    _content_type_in(request, (JSON, NDJSON))
    raw = await request.body()
    if raw.lstrip().startswith(b"["):
        items = _parse_json(raw, "")
    else:
        items = [
            _parse_json(line, f"line {n}: ")
            for n, line in enumerate(raw.splitlines(), start=1)
            if line.strip()
        ]
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
        description="Related stories for Bulgarian news articles: read, publish, unpublish. "
        'Every error is `{"error": "..."}`, naming the parameter or field.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.recommender = state

    def records(engine: Engine, article_id: str, q: RelatedQuery) -> list[dict[str, Any]]:
        """The related items of an indexed article: the stored list for default parameters,
        computed (through the byte-bounded cache) for others. Runs off the event loop."""
        if q.is_default(state.settings.max_k):
            stored = engine.stored_list(article_id)
            if stored is None:
                raise _not_indexed(article_id)
            items: list[dict[str, Any]] = orjson.loads(stored)[: q.k]
            return items
        gen = engine.sync()  # the log first, so a cached answer is never stale
        key = (gen.path.name, gen.mirror.seq, article_id, q.model_dump_json())

        def fresh() -> bytes:
            try:
                return orjson.dumps(_records(engine.related(article_id, q)))
            except ArticleNotFound:
                raise _not_indexed(article_id) from None

        computed: list[dict[str, Any]] = orjson.loads(state.cached(key, fresh))
        return computed

    def cacheable(body: bytes, request: Request, media_type: str) -> Response:
        etag = content_etag(body)
        headers = {"ETag": etag, "Cache-Control": cache_control(state.settings)}
        if if_none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

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
            # reads go on when writes are refused (a full disk): degraded, not unready
            "status": "ready" if e.write_error is None else "degraded",
            "writes": "ok" if e.write_error is None else f"refused since {e.write_error}",
            "articles": len(e),
            "model_id": e.model_id,
            "generation": e.gen.path.name,
            "seq": e.gen.mirror.seq,
            "encoder": e.encoder.describe() if e.encoder is not None else None,
        }

    @app.get("/articles/{article_id}", responses=error_responses(503))
    def get_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> ArticleOut:
        article = engine.article(article_id)
        if article is None:
            raise _not_indexed(article_id)
        return ArticleOut.of(article)

    @app.get(
        "/articles/{article_id}/related",
        response_model=RelatedOut,
        responses=error_responses(503, other={304: {"description": "Not modified (ETag)"}}),
    )
    async def related_by_id(
        article_id: str,
        q: Annotated[RelatedQuery, Query()],
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
    ) -> Response:
        """Related stories of an indexed article. With default parameters this is the list
        stored when the article or its neighbours were last written (a lookup); with others
        it is computed from the article's stored vector (nothing is encoded). The ETag is the
        answer's hash: it changes exactly when the list does."""
        if q.is_default(state.settings.max_k):
            body = stored_answer(engine, article_id, q.k)  # a primary-key lookup: on the loop
            if body is None:
                raise _not_indexed(article_id)
        else:
            items = await run_in_threadpool(records, engine, article_id, q)
            body = _related_body(article_id, engine.model_id, items)
        return cacheable(body, request, JSON)

    @app.post(
        "/related",
        responses=error_responses(503, other={200: {"links": ITEM_LINKS}}),
        dependencies=[Depends(json_content)],
    )
    async def related_by_text(
        body: TextQuery,
        engine: Annotated[Engine, Depends(get_engine)],
        queue: Annotated[EncodeQueue, Depends(encode_queue)],
    ) -> RelatedOut:
        """Related stories of an article that is not indexed (its text is encoded). Text queries
        wait in a short queue for the encoder; when it is full the answer is 503 with
        Retry-After."""
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
        items = await _encoding(queue, lambda: engine.related_text(article, q))
        return RelatedOut.model_validate_json(_related_body(None, engine.model_id, _records(items)))

    @app.put(
        "/articles/{article_id}",
        tags=["write"],
        status_code=200,
        responses=error_responses(
            401, 403, 503, 507, other={201: {"model": WriteOut, "description": "Created"}}
        ),
        dependencies=[Writer, Depends(json_content)],
    )
    async def put_article(
        article_id: str,
        article: ArticleIn,
        response: Response,
        engine: Annotated[Engine, Depends(get_engine)],
        queue: Annotated[EncodeQueue, Depends(encode_queue)],
    ) -> WriteOut:
        """Publish or correct one article. When this returns, its related list (and the lists
        of the older articles it belongs with) are stored and served."""
        try:
            valid = Article.model_validate(
                {**article.model_dump(exclude_unset=True), "id": article_id}
            )
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=validation_reason(exc)) from None
        (result,) = await _encoding(queue, lambda: engine.upsert([valid]))
        if result.status == "created":
            response.status_code = 201
        return WriteOut.of(result)

    @app.delete(
        "/articles/{article_id}", tags=["write"], responses=WRITE_ERRORS, dependencies=[Writer]
    )
    def delete_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> WriteOut:
        """Unpublish an article. When this returns, no stored list holds it."""
        (result,) = engine.delete([article_id])
        if result.status == "not_found":
            raise _not_indexed(article_id)
        return WriteOut.of(result)

    @app.post(
        "/articles",
        tags=["write"],
        responses=WRITE_ERRORS,
        dependencies=[Writer],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": ARTICLE_SCHEMA}}
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_articles(
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
        queue: Annotated[EncodeQueue, Depends(encode_queue)],
    ) -> BulkOut:
        """Bulk upsert: a JSON array of articles or NDJSON, each with its `id`; one result per
        item, in order, with the reason for each rejected one. Valid items are written in one
        transaction even when others are rejected. An id given twice is written once, from its
        last item; the earlier ones are reported `duplicate`."""
        items: list[Article | WriteOut] = []
        for item in await _json_items(request, state.settings.max_batch):
            if not isinstance(item, dict):
                items.append(WriteOut(id=None, status="rejected", reason="expected a JSON object"))
                continue
            try:
                items.append(Article.model_validate(item))
            except ValidationError as exc:
                reason = validation_reason(exc)
                items.append(WriteOut(id=_reported_id(item), status="rejected", reason=reason))
        last = _last_positions([a.id if isinstance(a, Article) else None for a in items])
        valid = [a for n, a in enumerate(items) if isinstance(a, Article) and last[a.id] == n]
        written = await _encoding(queue, lambda: engine.upsert(valid)) if valid else []
        by_id = {r.id: WriteOut.of(r) for r in written}
        return _bulk(
            [
                a
                if isinstance(a, WriteOut)
                else by_id[a.id]
                if last[a.id] == n
                else _duplicate(a.id, last[a.id])
                for n, a in enumerate(items)
            ]
        )

    @app.delete(
        "/articles",
        tags=["write"],
        responses=WRITE_ERRORS,
        dependencies=[Writer, Depends(json_content)],
    )
    def delete_articles(body: DeleteIn, engine: Annotated[Engine, Depends(get_engine)]) -> BulkOut:
        """Bulk unpublish; one result per id given (`deleted` or `not_found`; an id given
        again later is reported `duplicate` at its earlier places)."""
        if len(body.ids) > state.settings.max_batch:
            raise HTTPException(
                status_code=413,
                detail=f"ids: {len(body.ids)}, at most {state.settings.max_batch} per request",
            )
        last = _last_positions(list(body.ids))
        by_id = {r.id: WriteOut.of(r) for r in engine.delete(list(last))}
        return _bulk(
            [by_id[i] if last[i] == n else _duplicate(i, last[i]) for n, i in enumerate(body.ids)]
        )

    def box_items(article_id: str, q: RelatedQuery) -> list[RelatedItemOut]:
        """The one call through which the HTML box gets its list (the JSON list's items)."""
        engine = get_engine(state)
        return [RelatedItemOut.model_validate(r) for r in records(engine, article_id, q)]

    def latest(n: int) -> list[Article]:
        mirror = get_engine(state).gen.mirror
        dated = [s for s in mirror.stories if s is not None and s.published is not None]
        return sorted(dated, key=lambda a: (a.published, a.id), reverse=True)[:n]

    source = WebSource(
        related=box_items,
        article=lambda article_id: get_engine(state).article(article_id),
        latest=latest,
    )
    app.include_router(web_router(source, state.settings))

    async def store_full(request: Request, exc: Exception) -> Response:
        log.error("write refused: %s", exc)
        request.app.state.metrics.writes_refused.labels("store_full").inc()
        return error_response(507, str(exc))

    app.add_exception_handler(StoreFull, store_full)
    _add_article_schema(app)
    install(app, state.settings, state)
    return app


async def _encoding(queue: EncodeQueue, fn: Callable[[], T]) -> T:
    """`fn` on the encoder's thread (writes and text queries encode): 503 when it is busy."""
    try:
        return await queue.run(fn)
    except EncoderUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except EncodeQueueFull as exc:
        raise HTTPException(
            status_code=503, detail=str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None


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
