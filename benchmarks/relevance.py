"""Relevance of every method on the dev judgements, through the eval harness.

Each dev query article's related list comes from `recommender.eval.runs.run_queries` over the
reindexed real corpus (the `reindex` benchmark's index, built here if that benchmark did not
run) for the methods `dense`, `tfidf`, `bm25` and `pipeline` (stage `ranked`: relevance before
de-duplication and diversity), scored by `recommender.eval.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from recommender.eval import metrics
from recommender.eval.files import doc_ids, load_qrels, read_queries
from recommender.eval.runs import Method, run_queries
from recommender.ranking.related import MAX_K
from recommender.storage.collection import Collection

PAIRS = (("dev_queries.tsv", "dev_qrels.tsv"), ("queries.tsv", "qrels.tsv"))


def judgement_files(data: Path) -> tuple[Path, Path] | None:
    for queries, qrels in PAIRS:
        if data.with_name(queries).is_file() and data.with_name(qrels).is_file():
            return data.with_name(queries), data.with_name(qrels)
    return None


METHODS: tuple[Method, ...] = ("dense", "tfidf", "bm25", "pipeline")


def run(ctx: RunContext) -> dict[str, Any]:
    files = judgement_files(ctx.data)
    if files is None:
        return {"skipped": f"no judgements beside {ctx.data} ({PAIRS})"}
    queries = read_queries(files[0])
    qrels = load_qrels(files[1])
    collection = Collection.load(ctx.real_index_dir())
    results: dict[str, Any] = {}
    missing = 0
    try:
        for method in METHODS:
            run_lists, absent = run_queries(collection, queries, method=method, k=MAX_K)
            missing = len(absent)
            scores = metrics.evaluate(doc_ids(run_lists), qrels, queries)
            results[method] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()
            }
    finally:
        collection.close()
    return {
        "method": "recommender.eval.runs.run_queries(method, stage=ranked), k=50",
        "queries_file": files[0].name,
        "missing_queries": missing,
        "metrics": results["dense"],
        "methods": results,
    }
