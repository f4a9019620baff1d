"""Runs for the eval harness: every query article's related stories under one method.

Methods: `pipeline` (the project's ranking, computed now: `ranked` or `final` stage), `stored`
(the materialized lists the website is served: final stage, default parameters, `max_k`
items), `dense` (e5 cosine alone), `tfidf` and `bm25` (lexical alone). All read one index, so
they compare on the same articles. `related_items` is the one place that asks the ranking for
a query's list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
import orjson
from tqdm import tqdm

from recommender.engine import Engine
from recommender.eval.files import Run, RunItem
from recommender.ranking.related import K_LIMIT, RelatedQuery

Method = Literal["pipeline", "stored", "dense", "tfidf", "bm25"]
Stage = Literal["ranked", "final"]
Bm25 = tuple[bm25s.BM25, np.ndarray]


def default_index_dir(input_path: Path) -> Path:
    """The harness's own index of an input file: `index/eval-<name>-<hash of its path>`, so two
    inputs with one file name (every `articles.jsonl`) never rebuild over each other."""
    digest = hashlib.sha1(str(input_path.resolve()).encode("utf-8")).hexdigest()[:8]
    return Path("index") / f"eval-{input_path.stem}-{digest}"


def _bm25(engine: Engine) -> Bm25:
    """A BM25 index over the live articles, from the term counts the store keeps."""
    view = engine.read_view()
    config = view.mirror.lexical.config
    rows = sorted(view.store.all_articles(), key=lambda r: r.slot)
    corpus = [[t for t, n in r.terms.items() for _ in range(n)] for r in rows]
    index = bm25s.BM25(k1=config.k1, b=config.b)
    index.index(corpus, show_progress=False)
    return index, np.array([r.slot for r in rows], dtype=np.int64)


def _lexical_run(engine: Engine, query_id: str, k: int, bm25: Bm25 | None) -> list[RunItem]:
    view = engine.read_view()
    mirror = view.mirror
    slot = mirror.slot_of[query_id]
    if bm25 is None:
        method = "tfidf"
        scores = mirror.lexical.scores_of_slot(slot).astype(np.float64)
        slots = np.arange(len(scores))
        scores[~mirror.vectors.alive[: len(scores)]] = -np.inf
    else:
        method = "bm25"
        index, slots = bm25
        (row,) = view.store.stored([query_id]).values()
        terms = [t for t, n in row.terms.items() for _ in range(n)]
        scores = np.asarray(index.get_scores(terms), dtype=np.float64)
    scores[slots == slot] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    top = top[np.isfinite(scores[top])]
    return [
        RunItem(
            mirror.teaser(int(slots[i])).id, float(scores[i]), method, {method: float(scores[i])}
        )
        for i in top
    ]


def related_items(
    engine: Engine,
    query_id: str,
    method: Method,
    stage: Stage,
    k: int,
    bm25: Bm25 | None = None,
) -> list[RunItem]:
    """One query article's related stories under `method`, with scores, parts and reasons."""
    if method in ("tfidf", "bm25"):
        return _lexical_run(engine, query_id, k, bm25)
    if method == "stored":
        stored = orjson.loads(engine.stored_list(query_id) or b"[]")
        return [RunItem(i["id"], float(i["score"]), i["reason"], i["parts"]) for i in stored[:k]]
    q = RelatedQuery(
        k=min(k, K_LIMIT), stage=stage, method="dense" if method == "dense" else "hybrid"
    )
    return [
        RunItem(it.article.id, it.score, it.reason, dict(it.parts))
        for it in engine.related(query_id, q)
    ]


def run_queries(
    engine: Engine,
    query_ids: Sequence[str],
    method: Method = "pipeline",
    stage: Stage = "ranked",
    k: int = K_LIMIT,
    progress: bool = False,
) -> tuple[Run, list[str]]:
    """Related stories per query id; ids not in the index are returned as missing."""
    mirror = engine.sync().mirror
    present = [q for q in query_ids if q in mirror]
    missing = [q for q in query_ids if q not in mirror]
    bm25 = _bm25(engine) if method == "bm25" else None
    run: Run = {}
    for query_id in tqdm(present, desc=f"eval {method}", disable=not progress):
        run[query_id] = related_items(engine, query_id, method, stage, k, bm25)
    return run, missing
