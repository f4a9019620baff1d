"""Related stories for an indexed article (from its stored vector) or for a new text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from recommender.articles import Article
from recommender.collection import Collection
from recommender.encoder import ArticleEncoder

MAX_K = 50


class RelatedQuery(BaseModel):
    """Per-request parameters; defaults are the site's defaults."""

    k: int = Field(default=5, ge=1, le=MAX_K)
    section: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    exclude: list[str] = Field(default_factory=list)


@dataclass
class RelatedItem:
    article: Article
    score: float
    reason: str
    parts: dict[str, float] = field(default_factory=dict)


class ArticleNotFound(KeyError):
    pass


class EncoderUnavailable(RuntimeError):
    pass


class RelatedService:
    """Nearest neighbours from the index, filtered inside the search."""

    def __init__(self, collection: Collection, encoder: ArticleEncoder | None = None) -> None:
        self.collection = collection
        self.encoder = encoder

    def _allowed(self, q: RelatedQuery) -> np.ndarray | None:
        if q.section is None and q.source is None and q.since is None and q.until is None:
            return None
        return self.collection.store.rows_matching(q.section, q.source, q.since, q.until)

    def _search(self, vector: np.ndarray, q: RelatedQuery, exclude: set[int]) -> list[RelatedItem]:
        store = self.collection.store
        for article_id in q.exclude:
            row = store.row_of(article_id)
            if row is not None:
                exclude.add(row)
        rows, scores = self.collection.index.search(vector, q.k, exclude, self._allowed(q))
        articles = store.get_rows([int(r) for r in rows])
        return [
            RelatedItem(a, float(s), "similar text", {"dense": float(s)})
            for a, s in zip(articles, scores, strict=True)
        ]

    def for_id(self, article_id: str, q: RelatedQuery) -> list[RelatedItem]:
        row = self.collection.store.row_of(article_id)
        if row is None:
            raise ArticleNotFound(article_id)
        vector = np.asarray(self.collection.index.vectors[row])
        return self._search(vector, q, {row})

    def for_text(self, title: str, lead: str, body: str, q: RelatedQuery) -> list[RelatedItem]:
        if self.encoder is None:
            raise EncoderUnavailable("no encoder is loaded for text queries")
        vector = self.encoder.encode_one(title, lead, body)
        return self._search(vector, q, set())
