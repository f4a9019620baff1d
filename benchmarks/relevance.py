"""Relevance of every method on the dev judgements, through the eval harness.

Each dev query article's related list comes from `recommender.eval.runs.run_queries` over the
reindexed real corpus (the `reindex` benchmark's index, built here if that benchmark did not
run) for the methods `dense`, `tfidf`, `bm25`, `pipeline` (computed, stage `ranked`: relevance
before de-duplication and diversity) and `stored` (the materialized lists the website is served:
final stage, default parameters, `max_k` items) beside `final` (the same final stage computed
per request, as the API did before lists were stored), scored by `recommender.eval.metrics`.
Target (issue 8): relevance does not drop with the living index — the ranked pipeline over the
live lexical and entity statistics scores nDCG@10 0.876 ± 0.005 as before, and the stored lists
score exactly what the per-request final stage scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from recommender.engine import Engine
from recommender.eval import metrics
from recommender.eval.files import doc_ids, load_qrels, read_queries
from recommender.eval.runs import Method, Stage, run_queries
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
    queries = read_queries(files[0])
    qrels = load_qrels(files[1])
    engine = Engine(ctx.real_index_dir(), ctx.settings)
    results: dict[str, Any] = {}
    missing = 0
    try:
        runs: list[tuple[str, Method, Stage, int]] = [(m, m, "ranked", MAX_K) for m in METHODS] + [
            ("final", "pipeline", "final", ctx.settings.max_k)
        ]
        for name, method, stage, k in runs:
            run_lists, absent = run_queries(engine, queries, method=method, stage=stage, k=k)
            missing = len(absent)
            scores = metrics.evaluate(doc_ids(run_lists), qrels, queries)
            results[name] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()
            }
    finally:
        engine.close()
    pipeline = results["pipeline"]["ndcg@10"]
    same = results["stored"]["ndcg@10"] == results["final"]["ndcg@10"]
    return {
        "method": "recommender.eval.runs.run_queries(method, stage=ranked), k=50; stored: the "
        f"materialized lists ({ctx.settings.max_k} items); final: the final stage per request",
        "target": f"pipeline nDCG@10 {BASELINE_NDCG} ± {TOLERANCE}; stored = final",
        "target_met": abs(pipeline - BASELINE_NDCG) <= TOLERANCE and same,
        "queries_file": files[0].name,
        "missing_queries": missing,
        "metrics": results["dense"],
        "methods": results,
    }
