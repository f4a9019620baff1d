"""Dense-only relevance on the dev judgements, scored by the project's `recommender.metrics`.

Each dev query article's related list comes from RelatedService.for_id over the reindexed real
corpus (the `reindex` benchmark's index, built here if that benchmark did not run), with
`method=dense` and `stage=ranked`: the embedding's own ranking, before fusion and diversifying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from recommender import metrics
from recommender.collection import Collection
from recommender.related import MAX_K, ArticleNotFound, RelatedQuery, RelatedService

PAIRS = (("dev_queries.tsv", "dev_qrels.tsv"), ("queries.tsv", "qrels.tsv"))


def judgement_files(data: Path) -> tuple[Path, Path] | None:
    for queries, qrels in PAIRS:
        if data.with_name(queries).is_file() and data.with_name(qrels).is_file():
            return data.with_name(queries), data.with_name(qrels)
    return None


def run(ctx: RunContext) -> dict[str, Any]:
    files = judgement_files(ctx.data)
    if files is None:
        return {"skipped": f"no judgements beside {ctx.data} ({PAIRS})"}
    queries = metrics.read_queries(files[0])
    collection = Collection.load(ctx.real_index_dir())
    try:
        service = RelatedService(collection)
        run_lists: dict[str, list[str]] = {}
        for query_id in queries:
            try:
                items = service.for_id(
                    query_id, RelatedQuery(k=MAX_K, method="dense", stage="ranked")
                )
            except ArticleNotFound:
                continue
            run_lists[query_id] = [i.article.id for i in items]
    finally:
        collection.close()
    result = metrics.evaluate(run_lists, metrics.read_qrels(files[1]), queries)
    return {
        "method": "dense only: RelatedService.for_id(method=dense, stage=ranked), k=50",
        "queries_file": files[0].name,
        "missing_queries": len(queries) - len(run_lists),
        "metrics": {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()},
    }
