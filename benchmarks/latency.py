"""Related-by-id latency in process: RelatedService.for_id over a loaded Collection.

Per size, the dense path (`method=dense` over a dense-only index of real and derived vectors):
FAISS search for the ranking pool, store look-up and the final ranking stage. Once, at the real
corpus size, the default hybrid path (dense, lexical and entity signals) over the real articles.
Each loop stops after `latency_queries` queries or `latency_max_seconds`, whichever comes first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context import RunContext
from benchmarks.fixtures import article_id
from benchmarks.stats import latency_ms
from recommender.ranking.related import RelatedQuery, RelatedService
from recommender.storage.collection import Collection

TARGET_P99_MS = 1.0
TARGET_SIZE = 100_000


def time_queries(
    ctx: RunContext, directory: Path, ids: list[str], query: RelatedQuery
) -> dict[str, Any]:
    started = time.perf_counter()
    collection = Collection.load(directory)
    load_s = time.perf_counter() - started
    p = ctx.profile
    try:
        service = RelatedService(collection)
        for article in ids[: p.latency_warmup]:
            service.for_id(article, query)
        total, search = [], []
        index = collection.index
        pool = service.config.pool_size
        deadline = time.perf_counter() + p.latency_max_seconds
        for article in ids[p.latency_warmup :]:
            if time.perf_counter() > deadline:
                break
            row = collection.store.row_of(article)
            assert row is not None
            t0 = time.perf_counter()
            service.for_id(article, query)
            t1 = time.perf_counter()
            index.search(index.vectors[row], pool, {row})
            search.append(time.perf_counter() - t1)
            total.append(t1 - t0)
        return {
            "index": collection.manifest.index,
            "signals": collection.manifest.signals,
            "k": query.k,
            "method": query.method,
            "pool_size": pool,
            "load_s": round(load_s, 3),
            "for_id_ms": latency_ms(total),
            "search_only_ms": latency_ms(search),
        }
    finally:
        collection.close()


def _ids(count: int, seed: int, n: int) -> list[int]:
    return [int(r) for r in np.random.default_rng(seed).integers(0, count, size=n)]


def run(ctx: RunContext) -> dict[str, Any]:
    p = ctx.profile
    n = p.latency_warmup + p.latency_queries
    by_size = []
    for size in ctx.sizes:
        directory, build_s = ctx.collection(size)
        ids = [article_id(r) for r in _ids(size, ctx.seed, n)]
        result = time_queries(ctx, directory, ids, RelatedQuery(method="dense"))
        by_size.append({"size": size, "build_s": round(build_s, 2)} | result)
    real_ids = [a.id for a in ctx.corpus().articles]
    hybrid = time_queries(
        ctx,
        ctx.real_index_dir(),
        [real_ids[r] for r in _ids(len(real_ids), ctx.seed, n)],
        RelatedQuery(),
    )
    at_target = next((r for r in by_size if r["size"] == TARGET_SIZE), None)
    return {
        "target": f"p99 <= {TARGET_P99_MS} ms at {TARGET_SIZE:,} articles",
        "target_met": None if at_target is None else at_target["for_id_ms"]["p99"] <= TARGET_P99_MS,
        "scale": ctx.scale_info(),
        "by_size": by_size,
        "hybrid_real_corpus": {"size": len(real_ids)} | hybrid,
    }
