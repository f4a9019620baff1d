"""Runs for the eval harness: every query article's related stories under one method.

Methods: `pipeline` (the project's ranking: `ranked` or `final` stage), `dense` (e5 cosine
alone), `tfidf` and `bm25` (lexical alone). All read one index directory, so they compare on the
same articles. `related_items` is the one place that asks the ranking for a query's list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from recommender.eval.files import Run, RunItem
from recommender.ranking.config import RankingConfig
from recommender.ranking.related import MAX_K, RelatedQuery, RelatedService
from recommender.storage.collection import Collection

Method = Literal["pipeline", "dense", "tfidf", "bm25"]
Stage = Literal["ranked", "final"]


def default_index_dir(input_path: Path) -> Path:
    """The harness's own index of an input file: `index/eval-<name>-<hash of its path>`, so two
    inputs with one file name (every `articles.jsonl`) never rebuild over each other."""
    digest = hashlib.sha1(str(input_path.resolve()).encode("utf-8")).hexdigest()[:8]
    return Path("index") / f"eval-{input_path.stem}-{digest}"


def _lexical_run(collection: Collection, query_id: str, k: int, method: Method) -> list[RunItem]:
    if collection.lexical is None:
        raise ValueError(f"index {collection.directory} has no lexical index: rebuild it")
    article = collection.store.get(query_id)
    assert article is not None
    scores = collection.lexical.scores(article, "bm25" if method == "bm25" else "tfidf")
    row = collection.store.row_of(query_id)
    scores[row] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    ids = collection.store.ids
    return [RunItem(ids[i], float(scores[i]), method, {method: float(scores[i])}) for i in top]


def related_items(
    service: RelatedService, query_id: str, method: Method, stage: Stage, k: int
) -> list[RunItem]:
    """One query article's related stories under `method`, with scores, parts and reasons."""
    if method in ("tfidf", "bm25"):
        return _lexical_run(service.collection, query_id, k, method)
    q = RelatedQuery(
        k=min(k, MAX_K), stage=stage, method="dense" if method == "dense" else "hybrid"
    )
    return [
        RunItem(it.article.id, it.score, it.reason, dict(it.parts))
        for it in service.for_id(query_id, q)
    ]


def run_queries(
    collection: Collection,
    query_ids: Sequence[str],
    method: Method = "pipeline",
    stage: Stage = "ranked",
    k: int = MAX_K,
    config: RankingConfig | None = None,
    progress: bool = False,
) -> tuple[Run, list[str]]:
    """Related stories per query id; ids not in the index are returned as missing."""
    service = RelatedService(collection, config=config)
    present = [q for q in query_ids if q in collection.store]
    missing = [q for q in query_ids if q not in collection.store]
    run: Run = {}
    for query_id in tqdm(present, desc=f"eval {method}", disable=not progress):
        run[query_id] = related_items(service, query_id, method, stage, k)
    return run, missing
