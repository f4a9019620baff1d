"""Related stories for an indexed article (from its stored vector) or for a new text.

Candidates come from the FAISS index (dense) and the lexical index (TF-IDF), with the filters
applied inside both searches so the list still fills up; `recommender.ranking.signals` fuses the
signals, and the final stage de-duplicates stories, applies the minimum score with its fallback
ladder and diversifies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import faiss
import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field
from threadpoolctl import threadpool_limits

from recommender.articles import MAX_ID_LENGTH, Article, as_utc
from recommender.embedding.encoder import ArticleEncoder
from recommender.ranking.config import RankingConfig
from recommender.ranking.final import final_list
from recommender.ranking.signals import Candidate, Ranker, Scored
from recommender.storage.collection import Collection
from recommender.text.entities import Entities, Overlap, article_entities, overlaps

MAX_K = 50
QUERY_ID = "\x00query"
NO_OVERLAP = Overlap(0.0, [])


MAX_EXCLUDE = 100
MAX_NAME = 200


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date-time, e.g. 2026-07-01T12:00:00+03:00")


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(as_utc)]
"""An ISO 8601 date-time (never a number of seconds), in UTC; without zone it is UTC."""


class RelatedQuery(BaseModel):
    """Per-request parameters; `None` means the configured default."""

    k: int = Field(default=5, ge=1, le=MAX_K, description="How many stories")
    section: str | None = Field(default=None, max_length=MAX_NAME)
    source: str | None = Field(default=None, max_length=MAX_NAME)
    since: IsoDateTime | None = Field(default=None, description="published at or after")
    until: IsoDateTime | None = Field(default=None, description="published at or before")
    exclude: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_EXCLUDE, description="ids never to show"
    )
    stage: Literal["final", "ranked"] = Field(
        default="final",
        description="final: what readers see (de-duplicated, diversified); ranked: raw relevance",
    )
    method: Literal["hybrid", "dense"] = "hybrid"
    diversity: float | None = Field(
        default=None, ge=0.0, le=1.0, description="MMR weight on novelty (0 = off)"
    )
    min_score: float | None = None
    freshness_days: float | None = Field(
        default=None, ge=0.0, description="days around the article with no freshness penalty"
    )

    def ranking_config(self, base: RankingConfig) -> RankingConfig:
        update: dict[str, object] = {"k": self.k}
        if self.diversity is not None:
            update["mmr_lambda"] = 1.0 - self.diversity
        if self.min_score is not None:
            update["min_score"] = self.min_score
        if self.freshness_days is not None:
            update["freshness_window_days"] = self.freshness_days
        if self.method == "dense":
            update |= {"w_dense": 1.0, "w_lexical": 0.0, "w_entities": 0.0, "freshness_weight": 0.0}
        return base.model_copy(update=update)


@dataclass
class RelatedItem:
    article: Article
    score: float
    reason: str
    parts: dict[str, float]

    @classmethod
    def of(cls, scored: Scored) -> RelatedItem:
        return cls(scored.article, scored.score, scored.reason, scored.parts)


class ArticleNotFound(KeyError):
    pass


class EncoderUnavailable(RuntimeError):
    pass


def single_threaded_math() -> None:
    """Per-request math is small: one BLAS and one FAISS thread avoid thread start-up and, on a
    busy machine, spinning threads that turn a 0.1 ms product into 30 ms."""
    threadpool_limits(1, user_api="blas")
    faiss.omp_set_num_threads(1)


class RelatedService:
    """Related stories over one loaded collection."""

    def __init__(
        self,
        collection: Collection,
        encoder: ArticleEncoder | None = None,
        config: RankingConfig | None = None,
    ) -> None:
        single_threaded_math()
        self.collection = collection
        self.encoder = encoder
        self.config = config or RankingConfig()

    def _allowed(self, q: RelatedQuery) -> np.ndarray | None:
        if q.section is None and q.source is None and q.since is None and q.until is None:
            return None
        return self.collection.store.rows_matching(q.section, q.source, q.since, q.until)

    def _lexical_rows(
        self, query: Article, size: int, exclude: set[int], allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        lexical = self.collection.lexical
        if lexical is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = lexical.scores(query)
        mask = np.zeros(len(scores), dtype=bool)
        if allowed is None:
            mask[:] = True
        else:
            mask[allowed] = True
        mask[list(exclude)] = False
        mask &= scores > 0
        rows = np.flatnonzero(mask)
        if len(rows) > size:
            rows = rows[np.argpartition(-scores[rows], size - 1)[:size]]
        return rows.astype(np.int64), scores

    def _candidates(
        self,
        query: Article,
        vector: np.ndarray,
        entities: Entities,
        q: RelatedQuery,
        config: RankingConfig,
        exclude: set[int],
    ) -> list[Candidate]:
        c = self.collection
        for article_id in q.exclude:
            row = c.store.row_of(article_id)
            if row is not None:
                exclude.add(row)
        allowed = self._allowed(q)
        hybrid = q.method == "hybrid" and c.lexical is not None
        # the dense order alone needs no more candidates than the stage that follows keeps
        pool = config.pool_size if hybrid else q.k if q.stage == "ranked" else config.final_pool
        dense_rows, _ = c.index.search(vector, pool, exclude, allowed)
        lexical_scores = None
        rows = dense_rows
        if hybrid:
            lexical_rows, lexical_scores = self._lexical_rows(
                query, config.pool_size, exclude, allowed
            )
            rows = np.union1d(dense_rows, lexical_rows)
        rows_list = [int(r) for r in rows]
        vectors = np.array(c.index.vectors[rows_list], dtype=np.float32)
        dense = vectors @ vector
        articles = c.store.get_rows(rows_list, with_body=False)
        stats = c.entity_stats
        shared = (
            overlaps(entities, c.store.entities_of(rows_list), stats)
            if stats is not None and q.method == "hybrid"
            else None
        )
        return [
            Candidate(
                article=a,
                dense=float(dense[i]),
                lexical=float(lexical_scores[r]) if lexical_scores is not None else 0.0,
                entities=shared[i] if shared is not None else NO_OVERLAP,
                vector=vectors[i],
                terms=c.lexical.row_terms(r) if c.lexical is not None else None,
            )
            for i, (r, a) in enumerate(zip(rows_list, articles, strict=True))
        ]

    def _related(
        self,
        query: Article,
        vector: np.ndarray,
        entities: Entities,
        q: RelatedQuery,
        exclude: set[int],
    ) -> list[RelatedItem]:
        config = q.ranking_config(self.config)
        candidates = self._candidates(query, vector, entities, q, config, exclude)
        ranked = Ranker(config).rank(query, candidates)
        items = ranked[: q.k] if q.stage == "ranked" else final_list(query, ranked, config)
        return [RelatedItem.of(s) for s in items]

    def for_id(self, article_id: str, q: RelatedQuery) -> list[RelatedItem]:
        c = self.collection
        row = c.store.row_of(article_id)
        if row is None:
            raise ArticleNotFound(article_id)
        query = c.store.get(article_id)
        assert query is not None
        (entities,) = c.store.entities_of([row])
        return self._related(query, np.asarray(c.index.vectors[row]), entities, q, {row})

    def for_text(
        self,
        title: str,
        lead: str,
        body: str,
        q: RelatedQuery,
        published: datetime | None = None,
        section: str | None = None,
    ) -> list[RelatedItem]:
        if self.encoder is None:
            raise EncoderUnavailable("no encoder is loaded for text queries")
        query = Article.model_construct(
            id=QUERY_ID,
            title=title,
            lead=lead,
            body=body,
            published=published,
            section=section,
            tags=[],
            url=None,
            source=None,
        )
        vector = self.encoder.encode_one(title, lead, body)
        return self._related(query, vector, article_entities(query), q, set())
