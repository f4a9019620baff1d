"""ANN recall@10 against exact search, with latency, build time and memory, per index setting.

Queries are stored vectors searched the way the ranking does (k=10, the query's own slot
excluded by an `allowed` mask), with `exact_below_allowed=0` so the FAISS index itself answers
(by default a masked search over fewer than 20,000 allowed slots is done exactly in numpy; that
path is timed beside it as `service_pool_search_ms`). Ground truth is exact inner-product
search; a returned row whose score ties the 10th exact score counts as a hit (the real corpus
holds exact reprints with equal vectors). Each query is also timed at k = the ranking pool size,
the search the hybrid ranking really makes (it raises HNSW efSearch to at least k), which is
what the flat/HNSW threshold is decided on. Indexes are built with every core, searched with one
thread (as a serving process does).
"""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from benchmarks.context import RunContext
from benchmarks.fixtures import faiss_threads
from benchmarks.stats import latency_ms
from benchmarks.thresholds import recommend
from recommender.ranking.config import RankingConfig
from recommender.storage.vectors import VectorIndex, VectorIndexConfig

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
    """Recall and time at k=10, and the time of the search the ranking makes (k=pool)."""
    recalls, times, pool_times = [], [], []
    allowed = np.ones(len(index.vectors), dtype=bool)
    for i, row in enumerate(rows):
        allowed[row] = False
        t0 = time.perf_counter()
        found, scores = index.search(index.vectors[row], K, allowed)
        t1 = time.perf_counter()
        index.search(index.vectors[row], pool, allowed)
        pool_times.append(time.perf_counter() - t1)
        times.append(t1 - t0)
        allowed[row] = True
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
    return int(faiss.serialize_index(index._index).size)


def service_pool_ms(index: VectorIndex, rows: np.ndarray, pool: int) -> dict[str, float]:
    """The pool search with the default `exact_below_allowed` (what a served index does)."""
    times = []
    allowed = np.ones(len(index.vectors), dtype=bool)
    for row in rows:
        allowed[row] = False
        t0 = time.perf_counter()
        index.search(index.vectors[row], pool, allowed)
        times.append(time.perf_counter() - t0)
        allowed[row] = True
    return latency_ms(times)


def _build(vectors: np.ndarray, config: VectorIndexConfig) -> tuple[VectorIndex, float]:
    started = time.perf_counter()
    with faiss_threads():
        index = VectorIndex.build(np.arange(len(vectors)), vectors, config)
    return index, time.perf_counter() - started


def measure_size(ctx: RunContext, size: int) -> list[dict[str, Any]]:
    p = ctx.profile
    vectors = np.ascontiguousarray(ctx.vectors(size), dtype=np.float32)
    rows = np.random.default_rng(ctx.seed + size).choice(
        size, min(p.recall_queries, size), replace=False
    )
    truth, truth_scores = exact_neighbours(vectors, rows)
    pool = RankingConfig().pool_size
    settings: list[dict[str, Any]] = []
    flat, build_s = _build(vectors, VectorIndexConfig(kind="flat", exact_below_allowed=0))
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
        config = VectorIndexConfig(
            kind="hnsw", hnsw_m=m, hnsw_ef_construction=p.ef_construction, exact_below_allowed=0
        )
        hnsw, build_s = _build(vectors, config)
        size_bytes = index_bytes(hnsw)
        hnsw.config = VectorIndexConfig(kind="hnsw", hnsw_m=m)
        service = service_pool_ms(hnsw, rows, pool)
        for ef in p.ef_searches:
            hnsw.config = config.model_copy(update={"hnsw_ef_search": ef})
            settings.append(
                {
                    "size": size,
                    "kind": "hnsw",
                    "m": m,
                    "ef_construction": p.ef_construction,
                    "ef_search": ef,
                    "build_s": round(build_s, 3),
                    "index_bytes": size_bytes,
                    "service_pool_search_ms": service,
                }
                | measure(hnsw, rows, truth, truth_scores, pool)
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
        "recommendation": recommend(settings, VectorIndexConfig()),
    }
