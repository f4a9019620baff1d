"""The reads: a stored article, the related list of an indexed article (JSON), and the related
list of a text that is not indexed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from recommender.api.bodies import JSON, json_content
from recommender.api.models import ArticleOut, RelatedOut, TextQuery
from recommender.api.state import (
    State,
    encoding,
    get_engine,
    get_state,
    not_indexed,
    related_body,
)
from recommender.engine import Engine
from recommender.ranking.related import ArticleNotFound, RelatedQuery
from recommender.serving import encode_queue
from recommender.serving.encodequeue import EncodeQueue
from recommender.serving.errors import Responses, error_responses
from recommender.serving.headers import cache_control, conditional

NOT_MODIFIED: Responses = {304: {"description": "Not modified (ETag)"}}
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

router = APIRouter()


@router.get("/articles/{article_id}", responses=error_responses(503))
def get_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> ArticleOut:
    article = engine.article(article_id)
    if article is None:
        raise not_indexed(article_id)
    return ArticleOut.of(article)


@router.get(
    "/articles/{article_id}/related",
    response_model=RelatedOut,
    responses=error_responses(503, other=NOT_MODIFIED),
)
async def related_by_id(
    article_id: str,
    q: Annotated[RelatedQuery, Query()],
    request: Request,
    state: Annotated[State, Depends(get_state)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> Response:
    """Related stories of an indexed article. With default parameters this is the list
    stored when the article or its neighbours were last written (a lookup); with others
    it is computed from the article's stored vector (nothing is encoded). The ETag is the
    answer's hash: it changes exactly when the list does."""
    try:
        if state.is_stored(q):  # a primary-key lookup: on the loop
            items = state.items(engine, article_id, q)
        else:
            items = await run_in_threadpool(state.items, engine, article_id, q)
    except ArticleNotFound:
        raise not_indexed(article_id) from None
    body = related_body(article_id, engine.model_id, items)
    return conditional(request, body, JSON, {"Cache-Control": cache_control(state.settings)})


@router.post(
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
    article, q = body.article(), body.query()
    items = await encoding(queue, lambda: engine.related_text(article, q))
    records = [i.record() for i in items]
    return RelatedOut.model_validate_json(related_body(None, engine.model_id, records))
