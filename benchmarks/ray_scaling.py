"""Ray Data against the local path on this machine: its overhead, and articles/s by number of
encoder actors (each with cores/actors CPUs and as many torch threads).

Same real articles, default backend, no embedding cache. For each actor count, a run on 2
articles gives the fixed cost (dataset planning, actor start, one model load per actor) and a
run on all of them the total; the steady rate, (n - 2) / (total - fixed), is what a long reindex
sees per machine. The local path is `ArticleEncoder.encode_texts` in this process, timed before
and after the Ray runs (the machine is shared: its load moves) and rated over both.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.context import RunContext
from benchmarks.corpus import read_corpus_articles
from recommender.embedding.distributed import RayOptions, encode_with_ray
from recommender.embedding.encoder import ArticleEncoder, article_text

PROBE = 2


def run(ctx: RunContext) -> dict[str, Any]:
    import ray

    articles = read_corpus_articles(ctx.data)
    n = min(ctx.profile.ray_articles, len(articles))
    step = max(1, len(articles) // n)
    chosen = articles[::step][:n]
    encoder = ArticleEncoder.from_settings(ctx.settings, use_cache=False)
    texts = [article_text(a) for a in chosen]
    encoder.encode_texts(texts[:PROBE])

    def local_run() -> float:
        t0 = time.perf_counter()
        encoder.encode_texts(texts)
        return time.perf_counter() - t0

    local_runs = [local_run()]
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    by_actors = []
    try:
        for actors in ctx.profile.ray_actors:
            options = RayOptions(concurrency=actors, num_cpus=cores / actors)
            t0 = time.perf_counter()
            encode_with_ray(chosen[:PROBE], encoder, ctx.settings, options)
            fixed_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            encode_with_ray(chosen, encoder, ctx.settings, options)
            total_s = time.perf_counter() - t0
            steady = (n - PROBE) / max(total_s - fixed_s, 1e-9)
            by_actors.append(
                {
                    "actors": actors,
                    "num_cpus": round(cores / actors, 2),
                    "fixed_s": round(fixed_s, 2),
                    "total_s": round(total_s, 2),
                    "articles_per_s": round(n / total_s, 2),
                    "steady_articles_per_s": round(steady, 2),
                }
            )
    finally:
        ray.shutdown()
    local_runs.append(local_run())
    local_s = sum(local_runs) / len(local_runs)
    local_rate = n / local_s
    best = max(by_actors, key=lambda b: b["steady_articles_per_s"])
    return {
        "articles": n,
        "cores": cores,
        "backend": encoder.describe(),
        "ray_init_s": round(init_s, 2),
        "local_s": round(local_s, 2),
        "local_s_before_after": [round(x, 2) for x in local_runs],
        "local_articles_per_s": round(local_rate, 2),
        "by_actors": by_actors,
        "best_steady_over_local": round(best["steady_articles_per_s"] / local_rate, 3),
        "total_over_local_time": {
            str(b["actors"]): round(b["total_s"] / local_s, 3) for b in by_actors
        },
    }
