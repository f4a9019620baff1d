"""The writes, each behind the write key: publish or correct one article, unpublish one, and
the same in bulk. When a write returns it is committed: the article and its own list are
served, an unpublished article is in no list, and the older lists a publication changes follow
within about a second (the write's second wave, `Engine.finish_waves`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import ValidationError

from recommender.api.bodies import json_content, json_items, require_writer
from recommender.api.models import ArticleIn, BulkOut, DeleteIn, WriteOut
from recommender.api.state import State, encoding, get_engine, get_state, not_indexed
from recommender.articles import Article
from recommender.engine import Engine
from recommender.inputs import validation_reason
from recommender.serving import encode_queue
from recommender.serving.encodequeue import EncodeQueue
from recommender.serving.errors import error_responses

BULK_ITEMS = {
    "type": "array",
    "items": {
        "description": "An article (the `Article` schema), each checked on its own: one that is "
        "not is reported `rejected` with the reason, and the others are written"
    },
}
WRITE_ERRORS = error_responses(401, 403, 503, 507)

router = APIRouter(tags=["write"], dependencies=[Depends(require_writer)])


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


@router.put(
    "/articles/{article_id}",
    status_code=200,
    responses=error_responses(
        401, 403, 503, 507, other={201: {"model": WriteOut, "description": "Created"}}
    ),
    dependencies=[Depends(json_content)],
)
async def put_article(
    article_id: str,
    article: ArticleIn,
    response: Response,
    engine: Annotated[Engine, Depends(get_engine)],
    queue: Annotated[EncodeQueue, Depends(encode_queue)],
) -> WriteOut:
    """Publish or correct one article. When this returns, it and its related list are
    stored and served; the lists of the older articles it belongs with follow within about a
    second."""
    try:
        valid = Article.model_validate({**article.model_dump(exclude_unset=True), "id": article_id})
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=validation_reason(exc)) from None
    (result,) = await encoding(queue, lambda: engine.upsert([valid]))
    if result.status == "created":
        response.status_code = 201
    return WriteOut.of(result)


@router.delete("/articles/{article_id}", responses=WRITE_ERRORS)
def delete_article(article_id: str, engine: Annotated[Engine, Depends(get_engine)]) -> WriteOut:
    """Unpublish an article. When this returns, no stored list holds it."""
    (result,) = engine.delete([article_id])
    if result.status == "not_found":
        raise not_indexed(article_id)
    return WriteOut.of(result)


@router.post(
    "/articles",
    responses=WRITE_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": BULK_ITEMS},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_articles(
    request: Request,
    state: Annotated[State, Depends(get_state)],
    engine: Annotated[Engine, Depends(get_engine)],
    queue: Annotated[EncodeQueue, Depends(encode_queue)],
) -> BulkOut:
    """Bulk upsert: a JSON array of articles or NDJSON, each with its `id`; one result per
    item, in order, with the reason for each rejected one. Valid items are written in one
    transaction even when others are rejected. An id given twice is written once, from its
    last item; the earlier ones are reported `duplicate`."""
    items: list[Article | WriteOut] = []
    for item in await json_items(request, state.settings.max_batch):
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
    written = await encoding(queue, lambda: engine.upsert(valid)) if valid else []
    by_id = {r.id: WriteOut.of(r) for r in written}
    return BulkOut.of(
        [
            a
            if isinstance(a, WriteOut)
            else by_id[a.id]
            if last[a.id] == n
            else _duplicate(a.id, last[a.id])
            for n, a in enumerate(items)
        ]
    )


@router.delete("/articles", responses=WRITE_ERRORS, dependencies=[Depends(json_content)])
def delete_articles(
    body: DeleteIn,
    state: Annotated[State, Depends(get_state)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> BulkOut:
    """Bulk unpublish; one result per id given (`deleted` or `not_found`; an id given
    again later is reported `duplicate` at its earlier places)."""
    limit = state.settings.max_batch
    if len(body.ids) > limit:
        raise HTTPException(
            status_code=413, detail=f"ids: {len(body.ids)}, at most {limit} per request"
        )
    last = _last_positions(list(body.ids))
    by_id = {r.id: WriteOut.of(r) for r in engine.delete(list(last))}
    return BulkOut.of(
        [by_id[i] if last[i] == n else _duplicate(i, last[i]) for n, i in enumerate(body.ids)]
    )
