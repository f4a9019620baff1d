"""The ranking learned from judgements and the grouping of candidates by happening.

A model directory (`recommender ranker train`, `recommender.ranking.training`) holds three
LightGBM boosters over the signals the engine already computes, and a card:

- `ranker.txt`: LambdaRank over the query–candidate features `FEATURES` (the hand fusion's
  score among them), trained on graded judgements; it replaces the hand fusion's order;
- `own.txt`: the probability that a candidate reports the query article's own happening
  (judged grade 3 on the story ruler), from the same features; the final stage drops those
  at or above the card's `own_threshold` from the box;
- `pair.txt`: the probability that two candidates report one happening, from `PAIR_FEATURES`
  (their dense and TF-IDF cosine, days apart, title similarity, entities both share with the
  query, their similarity to the query); the final stage keeps one item per group of
  candidates joined at or above `pair_threshold`;
- `card.json` / `card.md`: features, data, folds, thresholds and cross-validated metrics.

No text is stored in a model: trees over numbers only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from recommender.articles import Article, as_utc
from recommender.ranking.signals import SECONDS_PER_DAY, Candidate, Scored

FEATURES = (
    "dense",
    "lexical",
    "entities",
    "entities_shared",
    "title",
    "days",
    "abs_days",
    "same_source",
    "same_section",
    "dense_rank",
    "lexical_rank",
    "entities_rank",
    "hand",
    "hand_rank",
    "title_words",
    "lead_chars",
)
PAIR_FEATURES = (
    "dense",
    "lexical",
    "abs_days",
    "title",
    "shared",
    "dense_min",
    "dense_max",
    "lexical_min",
    "lexical_max",
)
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
PREFIX = 6


def title_words(title: str) -> frozenset[str]:
    """A title's words of three letters or more, lower case, cut to their first 6 letters."""
    return frozenset(w[:PREFIX] for w in _WORD.findall(title.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _days(query: Article, article: Article) -> float:
    if query.published is None or article.published is None:
        return math.nan
    return (as_utc(article.published) - as_utc(query.published)).total_seconds() / SECONDS_PER_DAY


def _ranks(values: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return ranks


def features(query: Article, pool: Sequence[Candidate], hand: np.ndarray) -> np.ndarray:
    """One row of `FEATURES` per candidate of `pool` (`hand`: the hand fusion's scores)."""
    n = len(pool)
    out = np.empty((n, len(FEATURES)), dtype=np.float64)
    q_words = title_words(query.title)
    dense = np.array([c.dense for c in pool], dtype=np.float64)
    lexical = np.array([c.lexical for c in pool], dtype=np.float64)
    entities = np.array([c.entities.score for c in pool], dtype=np.float64)
    days = np.array([_days(query, c.article) for c in pool], dtype=np.float64)
    out[:, 0], out[:, 1], out[:, 2] = dense, lexical, entities
    out[:, 3] = [len(c.entities.shared) for c in pool]
    out[:, 4] = [jaccard(q_words, title_words(c.article.title)) for c in pool]
    out[:, 5], out[:, 6] = days, np.abs(days)
    out[:, 7] = [float(bool(query.source) and c.article.source == query.source) for c in pool]
    out[:, 8] = [float(bool(query.section) and c.article.section == query.section) for c in pool]
    out[:, 9], out[:, 10], out[:, 11] = _ranks(dense), _ranks(lexical), _ranks(entities)
    out[:, 12], out[:, 13] = hand, _ranks(hand)
    out[:, 14] = [len(c.article.title.split()) for c in pool]
    out[:, 15] = [len(c.article.lead) for c in pool]
    return out


def _lexical_matrix(items: Sequence[Scored]) -> np.ndarray | None:
    terms = [it.candidate.terms for it in items]
    if not items or any(t is None for t in terms):
        return None
    import scipy.sparse as sp

    indices = [t[0] for t in terms if t is not None]
    weights = [t[1] for t in terms if t is not None]
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices])])
    width = max((int(i.max()) + 1 for i in indices if len(i)), default=1)
    rows = sp.csr_matrix(
        (np.concatenate(weights), np.concatenate(indices), indptr), shape=(len(items), width)
    )
    return np.asarray((rows @ rows.T).toarray(), dtype=np.float64)


def pair_features(items: Sequence[Scored]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, rows of `PAIR_FEATURES`) for every pair i < j of `items`."""
    n = len(items)
    i, j = np.triu_indices(n, k=1)
    out = np.zeros((len(i), len(PAIR_FEATURES)), dtype=np.float64)
    if not len(i):
        return i, j, out
    vectors = [it.candidate.vector for it in items]
    if all(v is not None for v in vectors):
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        out[:, 0] = (matrix @ matrix.T)[i, j]
    lexical = _lexical_matrix(items)
    if lexical is not None:
        out[:, 1] = lexical[i, j]
    stamps = np.array(
        [
            as_utc(it.article.published).timestamp() if it.article.published else math.nan
            for it in items
        ]
    )
    out[:, 2] = np.abs(stamps[i] - stamps[j]) / SECONDS_PER_DAY
    words = [title_words(it.article.title) for it in items]
    shared = [frozenset(it.candidate.entities.shared) for it in items]
    out[:, 3] = [jaccard(words[a], words[b]) for a, b in zip(i, j, strict=True)]
    out[:, 4] = [len(shared[a] & shared[b]) for a, b in zip(i, j, strict=True)]
    dense = np.array([it.candidate.dense for it in items])
    lex = np.array([it.candidate.lexical for it in items])
    out[:, 5], out[:, 6] = np.minimum(dense[i], dense[j]), np.maximum(dense[i], dense[j])
    out[:, 7], out[:, 8] = np.minimum(lex[i], lex[j]), np.maximum(lex[i], lex[j])
    return i, j, out


@dataclass(frozen=True)
class Model:
    """The three boosters of a model directory and the card's thresholds."""

    ranker: object
    own: object
    pair: object
    own_threshold: float
    pair_threshold: float
    path: Path

    def rank_scores(self, rows: np.ndarray) -> np.ndarray:
        return _predict(self.ranker, rows)

    def own_probability(self, rows: np.ndarray) -> np.ndarray:
        return _predict(self.own, rows)

    def pair_probability(self, rows: np.ndarray) -> np.ndarray:
        return _predict(self.pair, rows)


def _predict(booster: object, rows: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.zeros(0)
    return np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)  # type: ignore[attr-defined]


def load_model(path: Path | str) -> Model:
    """A model directory's boosters and thresholds; a clear error naming what is missing."""
    import lightgbm

    path = Path(path)
    card_path = path / "card.json"
    if not card_path.is_file():
        raise FileNotFoundError(
            f"ranking model {path}: no card.json (train one with `recommender ranker train`)"
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if list(card.get("features", [])) != list(FEATURES) or list(
        card.get("pair_features", [])
    ) != list(PAIR_FEATURES):
        raise ValueError(f"ranking model {path}: its features are not this version's")
    boosters = {
        name: lightgbm.Booster(model_file=str(path / f"{name}.txt"))
        for name in ("ranker", "own", "pair")
    }
    return Model(
        boosters["ranker"],
        boosters["own"],
        boosters["pair"],
        float(card["own_threshold"]),
        float(card["pair_threshold"]),
        path,
    )


@cache
def cached_model(path: str) -> Model:
    """One loaded model per directory and process."""
    return load_model(path)
