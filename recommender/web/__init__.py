"""The website's side: the related-stories box as an HTML fragment, the script that fills a
placeholder with it, and a demo news site over the indexed corpus.

Everything here reads through `WebSource`, three callables the app provides; the box's list
comes through exactly one of them (`related`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from recommender.articles import Article
from recommender.config import Settings
from recommender.ranking.related import ArticleNotFound, RelatedQuery
from recommender.serving.errors import error_responses
from recommender.serving.headers import cache_control, conditional
from recommender.web.render import Renderer, Story

HTML = "text/html; charset=utf-8"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_HEADERS = {"Cache-Control": "public, max-age=3600"}
DEMO_LATEST = 40
DEMO_BOX_SIZE = 5
BOX_CSP = "default-src 'none'; style-src 'self'"
DEMO_CSP = "default-src 'self'; connect-src 'self'; object-src 'none'"


@dataclass(frozen=True)
class WebSource:
    related: Callable[[str, RelatedQuery], Sequence[Story]]
    """The related stories of an indexed article (ArticleNotFound if it is not indexed)."""
    article: Callable[[str], Article | None]
    """A stored article with its body, or None."""
    latest: Callable[[int], Sequence[Article]]
    """The most recently published articles, newest first."""


def _static(name: str) -> tuple[bytes, str]:
    data = files("recommender.web").joinpath("static", name).read_bytes()
    return data, STATIC_TYPES["." + name.rsplit(".", 1)[-1]]


def web_router(source: WebSource, settings: Settings) -> APIRouter:
    renderer = Renderer(settings.timezone)
    router = APIRouter()
    static = {name: _static(name) for name in ("related.js", "related.css", "demo.css")}

    @router.get(
        "/articles/{article_id}/related.html",
        tags=["website"],
        response_class=Response,
        responses=error_responses(
            503,
            other={
                200: {"content": {"text/html": {}}, "description": "The box (empty: no story)"},
                304: {"description": "Not modified (ETag)"},
            },
        ),
    )
    def related_box(
        article_id: str, request: Request, q: Annotated[RelatedQuery, Query()]
    ) -> Response:
        """The related-stories box as an HTML fragment (a labelled section with a list; no
        script), with the same parameters as the JSON list."""
        try:
            items = source.related(article_id, q)
        except ArticleNotFound:
            raise HTTPException(
                status_code=404, detail=f"article '{article_id}' is not indexed"
            ) from None
        headers = {"Cache-Control": cache_control(settings), "Content-Security-Policy": BOX_CSP}
        return conditional(request, renderer.box(article_id, items).encode(), HTML, headers)

    @router.get("/static/{name}", include_in_schema=False)
    def static_file(name: str, request: Request) -> Response:
        if name not in static:
            raise HTTPException(status_code=404, detail=f"no static file '{name}'")
        data, media_type = static[name]
        return conditional(request, data, media_type, STATIC_HEADERS)

    if not settings.demo:
        return router

    def page(html: str) -> Response:
        return Response(html, media_type=HTML, headers={"Content-Security-Policy": DEMO_CSP})

    @router.get("/demo", include_in_schema=False)
    def demo_index() -> Response:
        return page(renderer.demo_index(source.latest(DEMO_LATEST)))

    @router.get("/demo/articles/{article_id}", include_in_schema=False)
    def demo_article(article_id: str) -> Response:
        article = source.article(article_id)
        if article is None:
            raise HTTPException(status_code=404, detail=f"article '{article_id}' is not indexed")
        return page(renderer.demo_article(article, article.body, DEMO_BOX_SIZE))

    return router
