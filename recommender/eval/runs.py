"""Runs for the eval harness: every query article's related stories under one method.

Methods: `pipeline` (the project's ranking, computed now: `ranked` or `final` stage), `stored`
(the materialized lists the website is served: final stage, default parameters, `max_k`
items), `dense` (e5 cosine alone), `tfidf` and `bm25` (lexical alone). All read one index, so
they compare on the same articles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import bm25s
import numpy as np
import orjson
from tqdm import tqdm

from recommender.engine import Engine
from recommender.ranking.related import MAX_K, RelatedQuery

Method = Literal["pipeline", "stored", "dense", "tfidf", "bm25"]
Stage = Literal["ranked", "final"]
Run = dict[str, list[tuple[str, float]]]


def _bm25(engine: Engine, k1: float, b: float) -> tuple[bm25s.BM25, list[int]]:
    """A BM25 index over the mirror's live slots, from the term counts the store keeps."""
    mirror = engine.gen.mirror
    slots = sorted(mirror.slot_of.values())
    rows = {r.slot: r.terms for r in engine.gen.store.all_articles()}
    corpus = [[t for t, n in rows[s].items() for _ in range(n)] for s in slots]
    index = bm25s.BM25(k1=k1, b=b)
    index.index(corpus, show_progress=False)
    return index, slots


def _lexical_run(
    engine: Engine, query_id: str, k: int, bm25: tuple[bm25s.BM25, list[int]] | None
) -> list[tuple[str, float]]:
    mirror = engine.gen.mirror
    slot = mirror.slot_of[query_id]
    if bm25 is None:
        alive = mirror.vectors.alive  # the lexical arrays grow by doubling: cut them to size
        scores = mirror.lexical.scores_of_slot(slot).astype(np.float64)[: len(alive)]
        scores[~alive[: len(scores)]] = -np.inf
        candidates = np.arange(len(scores))
    else:
        index, candidates_list = bm25
        row = next(r for r in engine.gen.store.stored([query_id]).values())
        terms = [t for t, n in row.terms.items() for _ in range(n)]
        scores = np.asarray(index.get_scores(terms), dtype=np.float64)
        candidates = np.asarray(candidates_list)
    scores[candidates == slot] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    top = top[np.isfinite(scores[top])]
    return [(mirror.story(int(candidates[i])).id, float(scores[i])) for i in top]


def run_queries(
    engine: Engine,
    query_ids: Sequence[str],
    method: Method = "pipeline",
    stage: Stage = "ranked",
    k: int = MAX_K,
    progress: bool = False,
) -> tuple[Run, list[str]]:
    """Related stories per query id; ids not in the index are returned as missing."""
    mirror = engine.sync().mirror
    present = [q for q in query_ids if q in mirror]
    missing = [q for q in query_ids if q not in mirror]
    lexical = engine.gen.mirror.lexical.config
    bm25 = _bm25(engine, lexical.k1, lexical.b) if method == "bm25" else None
    run: Run = {}
    for query_id in tqdm(present, desc=f"eval {method}", disable=not progress):
        if method in ("tfidf", "bm25"):
            run[query_id] = _lexical_run(engine, query_id, k, bm25)
        elif method == "stored":
            stored = orjson.loads(engine.stored_list(query_id) or b"[]")
            run[query_id] = [(item["id"], float(item["score"])) for item in stored[:k]]
        else:
            q = RelatedQuery(
                k=min(k, MAX_K), stage=stage, method="dense" if method == "dense" else "hybrid"
            )
            run[query_id] = [(i.article.id, i.score) for i in engine.related(query_id, q)]
    return run, missing
