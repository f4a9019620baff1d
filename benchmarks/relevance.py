"""Relevance of every method on the dev judgements, through the eval harness.

Each dev query article's related list comes from `recommender.eval.runs.run_queries` over the
reindexed real corpus (the `reindex` benchmark's index, built here if that benchmark did not
run) for the methods `dense`, `tfidf`, `bm25`, `pipeline` (computed, stage `ranked`: relevance
before de-duplication and diversity) and `stored` (the materialized lists the website is served:
final stage, default parameters, `max_k` items), scored by `recommender.eval.metrics`. Target
(issue 8): the stored lists score no lower than the pipeline did before lists were
materialized, nDCG@10 0.876 - 0.005.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from recommender.engine import Engine
from recommender.eval import metrics
from recommender.eval.runs import Method, run_queries
from recommender.ranking.related import MAX_K

PAIRS = (("dev_queries.tsv", "dev_qrels.tsv"), ("queries.tsv", "qrels.tsv"))


def judgement_files(data: Path) -> tuple[Path, Path] | None:
    for queries, qrels in PAIRS:
        if data.with_name(queries).is_file() and data.with_name(qrels).is_file():
            return data.with_name(queries), data.with_name(qrels)
    return None


METHODS: tuple[Method, ...] = ("dense", "tfidf", "bm25", "pipeline", "stored")
BASELINE_NDCG = 0.876
TOLERANCE = 0.005


def run(ctx: RunContext) -> dict[str, Any]:
    files = judgement_files(ctx.data)
    if files is None:
        return {"skipped": f"no judgements beside {ctx.data} ({PAIRS})"}
    queries = metrics.read_queries(files[0])
    qrels = metrics.read_qrels(files[1])
    engine = Engine(ctx.real_index_dir(), ctx.settings)
    results: dict[str, Any] = {}
    missing = 0
    try:
        for method in METHODS:
            run_lists, absent = run_queries(engine, queries, method=method, k=MAX_K)
            missing = len(absent)
            scores = metrics.evaluate(
                {q: [d for d, _ in v] for q, v in run_lists.items()}, qrels, queries
            )
            results[method] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()
            }
    finally:
        engine.close()
    stored = results["stored"]["ndcg@10"]
    return {
        "method": "recommender.eval.runs.run_queries(method, stage=ranked), k=50 "
        f"(stored: the materialized lists, {ctx.settings.max_k} items)",
        "target": f"stored nDCG@10 >= {BASELINE_NDCG} - {TOLERANCE}",
        "target_met": stored >= BASELINE_NDCG - TOLERANCE,
        "queries_file": files[0].name,
        "missing_queries": missing,
        "metrics": results["dense"],
        "methods": results,
    }
