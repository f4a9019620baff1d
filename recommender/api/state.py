"""What the routes share: the served engine and encoder, the answer cache, and the one read
path of a related list (`State.items`), which the JSON list and the HTML box both go through."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
from cachetools import LRUCache
from fastapi import Depends, HTTPException, Request

from recommender.config import Settings
from recommender.engine import EncoderUnavailable, Engine, IndexUnavailable
from recommender.ranking.related import ArticleNotFound, RelatedQuery
from recommender.serving import interpreter
from recommender.serving.encodequeue import RETRY_AFTER_SECONDS, EncodeQueue, EncodeQueueFull

if TYPE_CHECKING:
    from recommender.embedding.encoder import ArticleEncoder

log = logging.getLogger("recommender.api")
T = TypeVar("T")
Items = list[dict[str, Any]]


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
        """Open the index; unless this is a reader, load the encoder too. A reader never
        imports the embedding stage (nor torch): the writer encodes, and checks that the
        index's model is the configured one."""
        settings = self.settings
        encoder: ArticleEncoder | None = None
        model_id: str | None = None
        if settings.role != "reader":
            from recommender.embedding.backends import model_id_for
            from recommender.embedding.encoder import ArticleEncoder

            model_id = model_id_for(settings)
            try:
                encoder = ArticleEncoder.from_settings(settings)
            except Exception as exc:  # any failure to load a model: serve reads, report not ready
                self.encoder_error = f"{type(exc).__name__}: {exc}"
                log.error("encoder not loaded, writes and POST /related will answer 503: %s", exc)
        try:
            self.engine = Engine(
                settings.index_dir,
                settings,
                encoder,
                model_id,
                refreshes=settings.role != "reader",
            )
        except (IndexUnavailable, OSError, ValueError) as exc:
            self.error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        # the loaded model and mirror live as long as the process: keep them out of the
        # collector's passes; likewise a new generation's mirror once it is switched to
        interpreter.freeze()
        self.engine.on_switch = lambda: interpreter.freeze(collect=False)
        self.engine.start_following()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()

    def ready_engine(self) -> Engine:
        """The engine, or 503 when the index is not loaded."""
        if self.engine is None:
            raise HTTPException(status_code=503, detail=f"index not loaded: {self.error}")
        return self.engine

    def index_size(self) -> int:
        return len(self.engine) if self.engine is not None else 0

    def list_age_seconds(self) -> float | None:
        return self.engine.list_age_seconds() if self.engine is not None else None

    def log_lag(self) -> int:
        return self.engine.log_lag() if self.engine is not None else 0

    def is_stored(self, q: RelatedQuery) -> bool:
        """`q` is answered by the stored list (a primary-key lookup, cheap enough for the
        event loop); other parameters are computed."""
        return q.is_default(self.settings.max_k)

    def items(self, engine: Engine, article_id: str, q: RelatedQuery) -> Items:
        """The related items of an indexed article: the stored list for default parameters,
        computed (through the byte-bounded cache) for others; ArticleNotFound when it is not
        indexed."""
        if self.is_stored(q):
            stored = stored_items(engine, article_id, q.k)
            if stored is None:
                raise ArticleNotFound(article_id)
            return stored
        gen = engine.sync()  # the log first, so a cached answer is never stale
        key = (gen.path.name, gen.mirror.seq, article_id, q.model_dump_json())

        def fresh() -> bytes:
            return orjson.dumps([i.record() for i in engine.related(article_id, q)])

        computed: Items = orjson.loads(self._cached(key, fresh))
        return computed

    def _cached(self, key: tuple[object, ...], compute: Callable[[], bytes]) -> bytes:
        body = self.cache.get(key)
        if body is None:
            body = compute()
            if self.settings.response_cache_bytes and len(body) <= self.cache.maxsize:
                self.cache[key] = body
        return body


def stored_items(engine: Engine, article_id: str, k: int) -> Items | None:
    """The first `k` items of the stored list, or None for an article that is not indexed."""
    stored = engine.stored_list(article_id)
    if stored is None:
        return None
    items: Items = orjson.loads(stored)[:k]
    return items


def related_body(article_id: str | None, model_id: str, items: Items) -> bytes:
    return orjson.dumps(
        {"article_id": article_id, "model_id": model_id, "count": len(items), "items": items}
    )


def stored_answer(engine: Engine, article_id: str, k: int) -> bytes | None:
    """The body of the website's read (default parameters), or None when not indexed."""
    items = stored_items(engine, article_id, k)
    return None if items is None else related_body(article_id, engine.model_id, items)


def not_indexed(article_id: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"article '{article_id}' is not indexed")


def get_state(request: Request) -> State:
    state: State = request.app.state.recommender
    return state


def get_engine(state: Annotated[State, Depends(get_state)]) -> Engine:
    return state.ready_engine()


async def encoding(queue: EncodeQueue, fn: Callable[[], T]) -> T:
    """`fn` on the encoder's thread (writes and text queries encode): 503 when it is busy."""
    try:
        return await queue.run(fn)
    except EncoderUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except EncodeQueueFull as exc:
        raise HTTPException(
            status_code=503, detail=str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None
