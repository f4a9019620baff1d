"""Related-list latency in process, over an open `Engine`.

Per size (placeholder articles, real and derived vectors; `benchmarks.fixtures`):
- the website's read: `recommender.api.stored_answer` (the stored list looked up, sliced to
  k=5 and serialized exactly as the API answers a GET with default parameters) plus its ETag;
- the computed dense path (`Engine.related`, `method=dense`) and, beside it, the FAISS search
  it makes (`VectorIndex.search` with the query's own slot excluded by a mask, as the ranking
  calls it).
On the real corpus (indexed by `build_index`, text signals included): the website's read, the
default list computed (what every write computes for each list it changes), and non-default
parameters computed per request: a filter, a date window, `stage=ranked`, `method=dense` and
diversity. Each loop stops after `latency_queries` queries or `latency_max_seconds`
(`computed_max_seconds` for the computed queries on the real corpus).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context import RunContext
from benchmarks.fixtures import article_id
from benchmarks.stats import latency_ms
from recommender.api import stored_answer
from recommender.engine import Engine
from recommender.ranking.related import RelatedQuery
from recommender.serving.headers import content_etag

READ_K = 5
TARGET_READ_P99_MS = 0.2
TARGET_SIZE = 100_000
TARGET_COMPUTED_P50_MS = 5.0
TARGET_DEFAULT_P50_MS = 3.0


def _loop(
    ctx: RunContext,
    ids: list[str],
    call: Callable[[str], object],
    max_seconds: float | None = None,
) -> dict[str, float]:
    p = ctx.profile
    for article in ids[: p.latency_warmup]:
        call(article)
    samples = []
    deadline = time.perf_counter() + (max_seconds or p.latency_max_seconds)
    for article in ids[p.latency_warmup :]:
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        call(article)
        samples.append(time.perf_counter() - t0)
    return latency_ms(samples)


def website_read(engine: Engine) -> Callable[[str], object]:
    def read(article: str) -> object:
        body = stored_answer(engine, article, READ_K)
        assert body is not None, article
        return content_etag(body)

    return read


def search_only(engine: Engine, pool: int) -> Callable[[str], object]:
    """The FAISS search of the dense path alone (own slot excluded by a mask, as ranked)."""
    mirror = engine.read_view().mirror

    def search(article: str) -> object:
        slot = mirror.slot_of[article]
        mask = np.ones(mirror.size, dtype=bool)
        mask[slot] = False
        return mirror.vectors.search(mirror.vectors.vectors[slot], pool, mask)

    return search


def computed(engine: Engine, q: RelatedQuery) -> Callable[[str], object]:
    return lambda article: engine.related(article, q)


def _open(ctx: RunContext, directory: Path) -> tuple[Engine, float]:
    started = time.perf_counter()
    engine = Engine(directory, ctx.settings)
    return engine, time.perf_counter() - started


def _ids(count: int, seed: int, n: int) -> list[int]:
    return [int(r) for r in np.random.default_rng(seed).integers(0, count, size=n)]


def measure_size(ctx: RunContext, size: int, ids: list[str]) -> dict[str, Any]:
    directory, build_s = ctx.index(size)
    engine, load_s = _open(ctx, directory)
    try:
        pool = ctx.settings.ranking.final_pool
        return {
            "size": size,
            "build_s": round(build_s, 2),
            "load_s": round(load_s, 2),
            "index": engine.read_view().mirror.vectors.params(),
            "read_ms": _loop(ctx, ids, website_read(engine)),
            "dense_ms": _loop(ctx, ids, computed(engine, RelatedQuery(method="dense"))),
            "search_only_ms": _loop(ctx, ids, search_only(engine, pool)),
            "search_k": pool,
        }
    finally:
        engine.close()


def parameter_variants(engine: Engine) -> dict[str, RelatedQuery]:
    """Non-default parameters a site sends: a filter on its commonest section (or source when
    the corpus has none), the last 30 days of the corpus, raw relevance, dense only, MMR."""
    stories = engine.teasers()
    sections = Counter(s.section for s in stories if s.section)
    sources = Counter(s.source for s in stories if s.source)
    dates = sorted(s.published for s in stories if s.published is not None)
    variants: dict[str, RelatedQuery] = {}
    if sections:
        variants["section"] = RelatedQuery(section=sections.most_common(1)[0][0])
    elif sources:
        variants["source"] = RelatedQuery(source=sources.most_common(1)[0][0])
    if dates:
        variants["since_30d"] = RelatedQuery(since=dates[-1] - timedelta(days=30))
    variants["stage_ranked"] = RelatedQuery(stage="ranked")
    variants["method_dense"] = RelatedQuery(method="dense")
    variants["diversity_0.3"] = RelatedQuery(diversity=0.3)
    return variants


def measure_real(ctx: RunContext, n: int) -> dict[str, Any]:
    engine, load_s = _open(ctx, ctx.real_index_dir())
    try:
        real_ids = sorted(engine.ids())
        ids = [real_ids[r] for r in _ids(len(real_ids), ctx.seed, n)]
        variants = parameter_variants(engine)
        params = {
            name: {
                "query": q.model_dump(mode="json", exclude_defaults=True),
                "ms": _loop(ctx, ids, computed(engine, q), ctx.profile.computed_max_seconds),
            }
            for name, q in variants.items()
        }
        worst = max(v["ms"]["p50"] for v in params.values())
        default = _loop(
            ctx, ids, computed(engine, RelatedQuery()), ctx.profile.computed_max_seconds
        )
        return {
            "size": len(real_ids),
            "load_s": round(load_s, 2),
            "index": engine.read_view().mirror.vectors.params(),
            "read_ms": _loop(ctx, ids, website_read(engine)),
            "default_computed_ms": default,
            "parameters": params,
            "target": f"p50 <= {TARGET_COMPUTED_P50_MS} ms for every non-default query",
            "target_met": worst <= TARGET_COMPUTED_P50_MS,
            "default_target": f"default list computed p50 <= {TARGET_DEFAULT_P50_MS} ms",
            "default_target_met": default["p50"] <= TARGET_DEFAULT_P50_MS,
        }
    finally:
        engine.close()


def run(ctx: RunContext) -> dict[str, Any]:
    p = ctx.profile
    n = p.latency_warmup + p.latency_queries
    by_size = [
        measure_size(ctx, size, [article_id(r) for r in _ids(size, ctx.seed, n)])
        for size in ctx.sizes
    ]
    at_target = next((r for r in by_size if r["size"] == TARGET_SIZE), None)
    return {
        "read_k": READ_K,
        "target": f"website read p99 <= {TARGET_READ_P99_MS} ms at {TARGET_SIZE:,} articles",
        "target_met": None
        if at_target is None
        else at_target["read_ms"]["p99"] <= TARGET_READ_P99_MS,
        "scale": ctx.scale_info(),
        "by_size": by_size,
        "real_corpus": measure_real(ctx, n),
    }
