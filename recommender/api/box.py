"""The website's routes (the HTML box, its script and style, the demo) over the served index:
the box's list is the JSON list's, read through the same `State.items`."""

from __future__ import annotations

from fastapi import APIRouter

from recommender.api.models import RelatedItemOut
from recommender.api.state import State
from recommender.articles import Article
from recommender.ranking.related import RelatedQuery
from recommender.web import WebSource, web_router


def box_router(state: State) -> APIRouter:
    def related(article_id: str, q: RelatedQuery) -> list[RelatedItemOut]:
        items = state.items(state.ready_engine(), article_id, q)
        return [RelatedItemOut.model_validate(r) for r in items]

    def latest(n: int) -> list[Article]:
        dated = [s for s in state.ready_engine().teasers() if s.published is not None]
        return sorted(dated, key=lambda a: (a.published, a.id), reverse=True)[:n]

    source = WebSource(
        related=related,
        article=lambda article_id: state.ready_engine().article(article_id),
        latest=latest,
    )
    return web_router(source, state.settings)
