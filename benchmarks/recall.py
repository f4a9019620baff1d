"""ANN recall@10 against exact search, with latency, build time and memory, per index setting.

Queries are stored vectors searched the way RelatedService does (k=10, the query's own row
excluded). Ground truth is exact inner-product search; a returned row whose score ties the
10th exact score counts as a hit (the real corpus holds exact reprints with equal vectors).
Each query is also timed at k = the ranking pool size, the search RelatedService really makes
(it raises HNSW efSearch to at least k), which is what the flat/HNSW threshold is decided on.
"""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from benchmarks.context import RunContext
from benchmarks.stats import latency_ms
from benchmarks.thresholds import recommend
from recommender.ranking.config import RankingConfig
from recommender.storage.vectors import IndexConfig, VectorIndex

K = 10
TIE = 1e-5


def exact_neighbours(vectors: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-K rows and scores of each query row, the row itself excluded."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, found = index.search(np.ascontiguousarray(vectors[rows]), K + 1)
    top_rows = np.empty((len(rows), K), dtype=np.int64)
    top_scores = np.empty((len(rows), K), dtype=np.float32)
    for i, row in enumerate(rows):
        keep = found[i] != row
        top_rows[i] = found[i][keep][:K]
        top_scores[i] = scores[i][keep][:K]
    return top_rows, top_scores


def measure(
    index: VectorIndex,
    rows: np.ndarray,
    truth: np.ndarray,
    truth_scores: np.ndarray,
    pool: int,
) -> dict[str, Any]:
    """Recall and time at k=10, and the time of the search RelatedService makes (k=pool)."""
    recalls, times, pool_times = [], [], []
    for i, row in enumerate(rows):
        t0 = time.perf_counter()
        found, scores = index.search(index.vectors[row], K, {int(row)})
        t1 = time.perf_counter()
        index.search(index.vectors[row], pool, {int(row)})
        pool_times.append(time.perf_counter() - t1)
        times.append(t1 - t0)
        hits = np.isin(found, truth[i]) | (scores >= truth_scores[i][-1] - TIE)
        recalls.append(min(int(hits.sum()), K) / K)
    r = np.asarray(recalls)
    return {
        "recall@10": round(float(r.mean()), 4),
        "recall@10_p05": round(float(np.percentile(r, 5)), 4),
        "search_ms": latency_ms(times),
        "pool_search_ms": latency_ms(pool_times),
    }


def index_bytes(index: VectorIndex) -> int:
    return int(faiss.serialize_index(index.index).size)


def measure_size(ctx: RunContext, size: int) -> list[dict[str, Any]]:
    p = ctx.profile
    vectors = np.ascontiguousarray(ctx.vectors(size), dtype=np.float32)
    rows = np.random.default_rng(ctx.seed + size).choice(
        size, min(p.recall_queries, size), replace=False
    )
    truth, truth_scores = exact_neighbours(vectors, rows)
    pool = RankingConfig().pool_size
    settings: list[dict[str, Any]] = []
    started = time.perf_counter()
    flat = VectorIndex.build(vectors, IndexConfig(kind="flat"))
    build_s = time.perf_counter() - started
    settings.append(
        {
            "size": size,
            "kind": "flat",
            "build_s": round(build_s, 3),
            "index_bytes": index_bytes(flat),
        }
        | measure(flat, rows, truth, truth_scores, pool)
    )
    for m in p.hnsw_ms:
        config = IndexConfig(kind="hnsw", hnsw_m=m, hnsw_ef_construction=p.ef_construction)
        started = time.perf_counter()
        hnsw = VectorIndex.build(vectors, config)
        build_s = time.perf_counter() - started
        size_bytes = index_bytes(hnsw)
        for ef in p.ef_searches:
            tuned = VectorIndex(
                hnsw.index, vectors, config.model_copy(update={"hnsw_ef_search": ef})
            )
            settings.append(
                {
                    "size": size,
                    "kind": "hnsw",
                    "m": m,
                    "ef_construction": p.ef_construction,
                    "ef_search": ef,
                    "build_s": round(build_s, 3),
                    "index_bytes": size_bytes,
                }
                | measure(tuned, rows, truth, truth_scores, pool)
            )
    return settings


def run(ctx: RunContext) -> dict[str, Any]:
    settings = [s for n in ctx.sizes for s in measure_size(ctx, n)]
    return {
        "k": K,
        "queries_per_size": ctx.profile.recall_queries,
        "faiss_threads": faiss.omp_get_max_threads(),
        "settings": settings,
        "pool_size": RankingConfig().pool_size,
        "recommendation": recommend(settings, IndexConfig()),
    }
