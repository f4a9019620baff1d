"""How much work each benchmark does: the full profile and `--quick`.

`encode_threads`: thread counts the encoders are measured with; 0 is the libraries' default
(one per core). `speedup_rounds`: interleaved fp32/default rounds of `speedup`; `ray_articles`
and `ray_actors`: the articles and actor counts of `ray`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[int, ...]
    latency_queries: int
    latency_warmup: int
    latency_max_seconds: float
    recall_queries: int
    hnsw_ms: tuple[int, ...]
    ef_searches: tuple[int, ...]
    ef_construction: int
    http_size: int
    http_concurrency: tuple[int, ...]
    http_requests: int
    http_max_seconds: float
    open_rate: float
    open_seconds: float
    encode_articles: int
    encode_single: int
    encode_threads: tuple[int, ...]
    speedup_rounds: int
    ray_articles: int
    ray_actors: tuple[int, ...]
    scale_sample: int


FULL = Profile(
    name="full",
    sizes=(1_000, 10_000, 100_000),
    latency_queries=3_000,
    latency_warmup=300,
    latency_max_seconds=40.0,
    recall_queries=500,
    hnsw_ms=(16, 32, 48),
    ef_searches=(16, 32, 64, 128, 256),
    ef_construction=200,
    http_size=100_000,
    http_concurrency=(1, 8, 32),
    http_requests=3_000,
    http_max_seconds=30.0,
    open_rate=200.0,
    open_seconds=20.0,
    encode_articles=96,
    encode_single=20,
    encode_threads=(0, 1),
    speedup_rounds=4,
    ray_articles=64,
    ray_actors=(1, 2),
    scale_sample=500,
)

QUICK = Profile(
    name="quick",
    sizes=(1_000, 10_000),
    latency_queries=500,
    latency_warmup=50,
    latency_max_seconds=10.0,
    recall_queries=200,
    hnsw_ms=(16, 32),
    ef_searches=(32, 128),
    ef_construction=200,
    http_size=10_000,
    http_concurrency=(1, 8, 32),
    http_requests=500,
    http_max_seconds=10.0,
    open_rate=200.0,
    open_seconds=5.0,
    encode_articles=16,
    encode_single=5,
    encode_threads=(0, 1),
    speedup_rounds=2,
    ray_articles=16,
    ray_actors=(1, 2),
    scale_sample=200,
)

PROFILES = {p.name: p for p in (FULL, QUICK)}
