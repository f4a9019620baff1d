"""Related stories for an indexed article (from its stored vector) or for a new text.

Everything is read from the in-memory mirror (`recommender.storage.mirror`): candidates come
from the vector index (dense) and the lexical index (TF-IDF), with the filters applied inside
both searches so the list still fills up; `recommender.ranking.signals` fuses the signals, and
`recommender.ranking.final` de-duplicates stories, applies the minimum score with its fallback
ladder and diversifies. `RelatedQuery` is the one declaration of the per-request parameters
(the API, the CLI and the eval harness all take it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field
from threadpoolctl import threadpool_limits

from recommender.articles import MAX_ID_LENGTH, Article, IsoDateTime, as_utc
from recommender.ranking.config import RankingConfig
from recommender.ranking.final import final_list
from recommender.ranking.signals import SECONDS_PER_DAY, Candidate, Pool, Ranker, Scored
from recommender.storage.lexical import LexicalIndex
from recommender.storage.mirror import Mirror
from recommender.text.entities import Entities, Overlap, Overlaps

K_LIMIT = 50
QUERY_ID = "\x00query"
NO_OVERLAP = Overlap(0.0, [])


MAX_EXCLUDE = 100
MAX_NAME = 200


class RelatedQuery(BaseModel):
    """Per-request parameters; `None` means the configured default."""

    k: int = Field(default=5, ge=1, le=K_LIMIT, description="How many stories")
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

    def is_default(self, max_k: int) -> bool:
        """Default parameters and at most `max_k` items: what the stored lists answer."""
        return self.k <= max_k and self == RelatedQuery(k=self.k)

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

    def record(self) -> dict[str, object]:
        """The item as the API renders it (JSON-ready)."""
        a = self.article
        return {
            "id": a.id,
            "url": a.url,
            "title": a.title,
            "lead": a.lead,
            "published": a.published.isoformat() if a.published else None,
            "section": a.section,
            "source": a.source,
            "score": round(self.score, 6),
            "reason": self.reason,
            "parts": {k: round(v, 6) for k, v in self.parts.items()},
        }


class ArticleNotFound(KeyError):
    pass


def single_threaded_math() -> None:
    """Per-request math is small: one BLAS and one FAISS thread avoid thread start-up and, on a
    busy machine, spinning threads that turn a 0.1 ms product into 30 ms."""
    threadpool_limits(1, user_api="blas")
    faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class Query:
    """What a related list is computed for: an indexed article (with its slot) or a new text."""

    article: Article
    vector: np.ndarray
    entities: Entities
    slot: int | None = None
    terms: dict[str, int] | None = None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime | None) -> int | None:
    """Microseconds since the epoch, exactly (the day distances of `day_distance`)."""
    return None if moment is None else (as_utc(moment) - EPOCH) // MICROSECOND


class _SlotCache:
    """What the ranking reads of each slot as arrays (id, publication time, entity key ids,
    which never change at a slot) and its l2-normalized TF-IDF row, kept for the story (or
    the idf) they were made from. Used under the mirror's lock."""

    def __init__(self) -> None:
        self._teasers: list[Article | None] = []
        self.ids = np.zeros(0, dtype=object)
        self.micros = np.zeros(0, dtype=np.int64)
        self.dated = np.zeros(0, dtype=bool)
        self._keys = np.zeros(0, dtype=np.int64)
        self._key_start = np.zeros(0, dtype=np.int64)
        self._key_count = np.zeros(0, dtype=np.int64)
        self._idf: np.ndarray | None = None
        self._terms: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, mirror: Mirror, slots: Sequence[int]) -> None:
        """Refresh the slots whose story changed since they were read."""
        teasers = mirror.teasers
        if len(self._teasers) < len(teasers):
            grow = len(teasers) - len(self._teasers)
            self._teasers.extend([None] * grow)
            self.ids = np.concatenate([self.ids, np.full(grow, None, dtype=object)])
            self.micros = np.concatenate([self.micros, np.zeros(grow, dtype=np.int64)])
            self.dated = np.concatenate([self.dated, np.zeros(grow, dtype=bool)])
            self._key_start = np.concatenate([self._key_start, np.zeros(grow, dtype=np.int64)])
            self._key_count = np.concatenate([self._key_count, np.zeros(grow, dtype=np.int64)])
        seen = self._teasers
        stale = [s for s in slots if teasers[s] is not seen[s]]
        added = [self._keys]
        offset = len(self._keys)
        for s in stale:
            story = teasers[s]
            assert story is not None, s
            seen[s] = story
            self.ids[s] = story.id
            micros = _micros(story.published)
            self.dated[s] = micros is not None
            self.micros[s] = micros or 0
            keys = mirror.entity_ids[s]
            self._key_start[s], self._key_count[s] = offset, len(keys)
            offset += len(keys)
            added.append(keys)
        if stale:
            self._keys = np.concatenate(added)

    def entity_keys(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slots' entity key ids concatenated, and how many each slot has."""
        counts = self._key_count[slots]
        ends = np.cumsum(counts)
        positions = np.arange(int(ends[-1]) if len(ends) else 0)
        positions += np.repeat(self._key_start[slots] - (ends - counts), counts)
        return self._keys[positions], counts

    def days(self, query: Article, slots: np.ndarray) -> np.ndarray:
        """Distance in days of each slot's publication from the query's (NaN: one missing)."""
        q = _micros(query.published)
        if q is None:
            return np.full(len(slots), math.nan)
        days: np.ndarray = np.abs(self.micros[slots] - q) / 1e6 / SECONDS_PER_DAY
        days[~self.dated[slots]] = math.nan
        return days

    def terms(self, lexical: LexicalIndex, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """`LexicalIndex.row_terms` of a slot (a slot's terms never change; the idf does)."""
        idf = lexical.idf()
        if idf is not self._idf:
            self._idf, self._terms = idf, {}
        row = self._terms.get(slot)
        if row is None:
            row = self._terms[slot] = lexical.row_terms(slot)
        return row


class Related:
    """Related stories over a mirror. Each call holds the mirror's lock while it reads it."""

    def __init__(self, mirror: Mirror, config: RankingConfig | None = None) -> None:
        self.mirror = mirror
        self.config = config or RankingConfig()
        self._cache = _SlotCache()

    def query_of(self, article_id: str) -> Query:
        m = self.mirror
        with m.lock:
            slot = m.slot_of.get(article_id)
            if slot is None:
                raise ArticleNotFound(article_id)
            return Query(m.teaser(slot), m.vectors.vectors[slot].copy(), m.entities[slot], slot)

    def _lexical(
        self, query: Query, size: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        lexical = self.mirror.lexical
        if query.slot is not None:
            scores = lexical.scores_of_slot(query.slot)
        else:
            scores = lexical.scores(query.terms or {})
        keep = scores > 0
        if mask is not None:
            keep[: len(mask)] &= mask[: len(keep)]
            keep[len(mask) :] = False
        if query.slot is not None:
            keep[query.slot] = False
        slots = np.flatnonzero(keep)
        if len(slots) > size:
            slots = slots[np.argpartition(-scores[slots], size - 1)[:size]]
        return slots.astype(np.int64), scores

    def _candidates(self, query: Query, q: RelatedQuery, config: RankingConfig) -> Pool:
        """The candidates as arrays; their `Candidate`s carry the TF-IDF rows when the final
        stage will compare their wording."""
        m = self.mirror
        mask = m.allowed(q.section, q.source, q.since, q.until, q.exclude)
        if query.slot is not None:
            mask = np.ones(m.size, dtype=bool) if mask is None else mask
            mask[query.slot] = False
        hybrid = q.method == "hybrid"
        # the dense order alone needs no more candidates than the stage that follows keeps
        pool = config.pool_size if hybrid else q.k if q.stage == "ranked" else config.final_pool
        slots, _ = m.vectors.search(query.vector, pool, mask)
        slots = np.asarray(slots, dtype=np.int64)
        zeros = np.zeros(len(slots), dtype=np.float64)
        lexical, shared = zeros, None
        cache = self._cache
        if hybrid:
            lexical_slots, lexical_scores = self._lexical(query, config.pool_size, mask)
            slots = np.union1d(slots, lexical_slots)
            lexical = lexical_scores[slots].astype(np.float64)
        cache.update(m, slots.tolist())
        if hybrid:
            shared = Overlaps(query.entities, [], m.entity_stats, flat_ids=cache.entity_keys(slots))
        vectors = m.vectors.vectors[slots]
        dense = (vectors @ query.vector).astype(np.float64)
        with_terms = q.stage == "final"

        def candidate(i: int) -> Candidate:
            s = int(slots[i])
            return Candidate(
                article=m.teaser(s),
                dense=float(dense[i]),
                lexical=float(lexical[i]),
                entities=shared.overlap(i) if shared is not None else NO_OVERLAP,
                vector=vectors[i],
                terms=cache.terms(m.lexical, s) if with_terms else None,
            )

        return Pool(
            dense=dense,
            lexical=lexical,
            entities=shared.scores if shared is not None else zeros,
            days=cache.days(query.article, slots),
            ids=cache.ids[slots],
            candidate=candidate,
        )

    def ranked(self, query: Query, q: RelatedQuery) -> tuple[list[Scored], list[RelatedItem]]:
        """The ranked candidates and the items the stage asked for keeps."""
        config = q.ranking_config(self.config)
        m = self.mirror
        with m.lock:
            pool = self._candidates(query, q, config)
            # the final stage chooses from the best `final_pool` (and a write's reverse updates
            # look at its best `reverse_neighbours`, fewer)
            limit = q.k if q.stage == "ranked" else config.final_pool
            ranked = Ranker(config).rank_pool(query.article, pool, limit)
        items = ranked[: q.k] if q.stage == "ranked" else final_list(query.article, ranked, config)
        return ranked, [RelatedItem.of(s) for s in items]

    def for_id(self, article_id: str, q: RelatedQuery) -> list[RelatedItem]:
        return self.ranked(self.query_of(article_id), q)[1]

    def for_text(self, query: Query, q: RelatedQuery) -> list[RelatedItem]:
        return self.ranked(query, q)[1]


def text_query(
    article: Article, vector: np.ndarray, entities: Entities, terms: dict[str, int]
) -> Query:
    """A query for an article that is not indexed, with its own id made unmatchable."""
    story = article.model_copy(update={"id": QUERY_ID})
    return Query(story, vector, entities, None, terms)
