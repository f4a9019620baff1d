"""The reader-facing final stage over ranked items: story-level de-duplication (re-prints collapse
into one, a re-print of the query itself is dropped), with a ranking model one item per
happening (reports of the query's own happening dropped, reports of one happening grouped:
`recommender.ranking.learned`), MMR diversity, and a minimum score with a fallback ladder so the
list is never short while candidates remain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp

from recommender.articles import Article
from recommender.ranking.config import RankingConfig
from recommender.ranking.signals import EPSILON, Scored, day_distance, is_same_story


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    return float(np.dot(a, b))


def _copy_matrix(items: Sequence[Scored], config: RankingConfig) -> np.ndarray:
    """`m[i, j]`: items i and j are versions of one story (near-identical meaning or wording)."""
    n = len(items)
    copies = np.zeros((n, n), dtype=bool)
    vectors = [it.candidate.vector for it in items]
    if n and all(v is not None for v in vectors):
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        copies |= matrix @ matrix.T >= config.duplicate_cosine
    terms = [it.candidate.terms for it in items]
    if n and all(t is not None for t in terms):
        indices = [t[0] for t in terms if t is not None]
        weights = [t[1] for t in terms if t is not None]
        indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices])])
        flat = np.concatenate(indices)
        width = int(flat.max()) + 1 if len(flat) else 1
        rows = sp.csr_matrix((np.concatenate(weights), flat, indptr), shape=(n, width))
        copies |= (rows @ rows.T).toarray() >= config.same_story_lexical
    return copies


def _representative(cluster: list[Scored], config: RankingConfig) -> Scored:
    """The preferred source if any, else the earliest published; it keeps the best score."""
    best = cluster[0]
    if len(cluster) == 1:
        return best
    preferred = {s: i for i, s in enumerate(config.preferred_sources)}
    far_future = datetime.max.replace(tzinfo=UTC)

    def order(item: Scored) -> tuple[int, datetime, str]:
        a = item.article
        return (preferred.get(a.source or "", len(preferred)), a.published or far_future, a.id)

    chosen = min(cluster, key=order)
    if chosen is best:
        return best
    return Scored(chosen.candidate, best.score, chosen.parts, best.reason)


def dedupe(items: Sequence[Scored], config: RankingConfig) -> list[Scored]:
    """Drop re-prints of the query; collapse near-copies among the rest into one item each.

    Items must be best first. Two items are copies when their vectors' cosine reaches
    `duplicate_cosine` or their TF-IDF cosine reaches `same_story_lexical`; an item joins the
    first (best) story that holds one of its copies.
    """
    kept = [it for it in items if not is_same_story(it.candidate, config)]
    earlier: np.ndarray = np.tril(_copy_matrix(kept, config), -1)
    joins = set(np.flatnonzero(earlier.any(axis=1)).tolist())
    story_of: list[int] = []
    clusters: list[list[Scored]] = []
    for i, item in enumerate(kept):
        if i in joins:
            home = min(story_of[j] for j in np.flatnonzero(earlier[i]).tolist())
            clusters[home].append(item)
        else:
            home = len(clusters)
            clusters.append([item])
        story_of.append(home)
    return [_representative(c, config) for c in clusters]


def by_happening(
    items: Sequence[Scored], config: RankingConfig
) -> tuple[list[Scored], list[Scored]]:
    """(one item per happening, the rest): items reporting the query's own happening (`own`
    part at or above the model's threshold) are set aside, and of the others an item joins
    the group of the first (best) earlier item it reports one happening with (the model's pair
    probability at or above its threshold), only a group's first item kept. Best first in,
    best first out."""
    from recommender.ranking.learned import cached_model, pair_features

    model = cached_model(str(config.model))
    own = [it.parts.get("own", 0.0) >= model.own_threshold for it in items]
    others = [it for it, is_own in zip(items, own, strict=True) if not is_own]
    aside = [it for it, is_own in zip(items, own, strict=True) if is_own]
    i, j, rows = pair_features(others)
    same = np.zeros((len(others), len(others)), dtype=bool)
    same[i, j] = model.pair_probability(rows) >= model.pair_threshold
    group = np.arange(len(others))
    for b in range(len(others)):
        earlier = np.flatnonzero(same[:b, b])
        if len(earlier):
            group[b] = group[earlier.min()]
    kept = [it for b, it in enumerate(others) if group[b] == b]
    aside += [it for b, it in enumerate(others) if group[b] != b]
    return kept, aside


def mmr(items: Sequence[Scored], lam: float, k: int) -> list[Scored]:
    """Maximal marginal relevance: `lam` * relevance - (1 - `lam`) * similarity to those chosen.

    Relevance is the score min-max scaled to [0, 1]; similarity is the vectors' cosine.
    `lam` = 1 keeps the ranked order.
    """
    pool = list(items)
    if lam >= 1.0 or len(pool) <= 1:
        return pool[:k]
    scores = np.array([it.score for it in pool])
    spread = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / spread if spread > EPSILON else np.ones(len(pool))
    chosen: list[int] = []
    left = list(range(len(pool)))
    while left and len(chosen) < k:

        def value(i: int) -> float:
            vector = pool[i].candidate.vector
            similarity = max(
                (_cosine(pool[j].candidate.vector, vector) for j in chosen), default=0.0
            )
            return lam * float(relevance[i]) - (1.0 - lam) * similarity

        best = max(left, key=value)
        chosen.append(best)
        left.remove(best)
    return [pool[i] for i in chosen]


def _with_reason(item: Scored, reason: str) -> Scored:
    return Scored(item.candidate, item.score, item.parts, reason)


def fallback(query: Article, items: Sequence[Scored], config: RankingConfig) -> list[Scored]:
    """The fallback ladder over items below the minimum score, rung by rung: the same story
    thread (shared named entities, best first), the same section and recent (closest in date
    first), then the rest by closeness in date (undated last)."""
    thread = [it for it in items if it.candidate.entities.shared]
    rest = [it for it in items if not it.candidate.entities.shared]
    dated = [(day_distance(query.published, it.article.published), it) for it in rest]
    recent = sorted(
        (
            (d, it)
            for d, it in dated
            if query.section and it.article.section == query.section
            if d is not None and d <= config.recent_days
        ),
        key=_by_day,
    )
    recent_ids = {it.article.id for _, it in recent}
    latest = sorted(((d, it) for d, it in dated if it.article.id not in recent_ids), key=_by_day)
    return (
        thread
        + [_with_reason(it, "same section, recent") for _, it in recent]
        + [_with_reason(it, "latest") for _, it in latest]
    )


def _by_day(pair: tuple[float | None, Scored]) -> tuple[float, str]:
    days, item = pair
    return (days if days is not None else math.inf, item.article.id)


def final_list(query: Article, items: Sequence[Scored], config: RankingConfig) -> list[Scored]:
    """The list a reader sees: de-duplicated, the items above `min_score` diversified by MMR,
    then filled up to k from the fallback ladder so the box is never short while candidates
    remain. `items` is `Ranker.rank`'s output."""
    unique = dedupe(items[: config.final_pool], config)
    aside: list[Scored] = []
    if config.model is not None and config.group_happenings:
        unique, aside = by_happening(unique, config)
    # a model's score has its own scale: the minimum is the hand fusion's
    passing = [it for it in unique if it.parts.get("hand", it.score) >= config.min_score]
    chosen = mmr(passing, config.mmr_lambda, config.k)
    if len(chosen) < config.k:
        below = [it for it in unique if it.parts.get("hand", it.score) < config.min_score]
        chosen += fallback(query, below, config)[: config.k - len(chosen)]
    return chosen + aside[: config.k - len(chosen)]
