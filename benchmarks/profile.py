"""How much work each benchmark does: the full profile and `--quick`.

`encode_threads`: thread counts the encoders are measured with; 0 is the libraries' default
(one per core). `speedup_rounds`: interleaved rounds of `speedup` (the reference and every
candidate encoder once each) over `speedup_articles` articles, then `speedup_single` single
texts per encoder; `ray_articles`
and `ray_actors`: the articles and actor counts of `ray`. `soak_*`: the soak's length, read
rate, HTML share, write pace, workers, warm-up and memory sampling period.
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
    computed_max_seconds: float
    recall_queries: int
    hnsw_ms: tuple[int, ...]
    ef_searches: tuple[int, ...]
    ef_construction: int
    http_workers: tuple[int, ...]
    wrk_connections: int
    wrk_seconds: float
    http_concurrency: tuple[int, ...]
    http_requests: int
    http_max_seconds: float
    open_rate: float
    open_seconds: float
    encode_articles: int
    encode_single: int
    encode_threads: tuple[int, ...]
    speedup_rounds: int
    speedup_articles: int
    speedup_single: int
    ray_articles: int
    ray_actors: tuple[int, ...]
    scale_sample: int
    publish_stories: int
    publish_stream: int
    publish_bulk: int
    publish_deletes: int
    publish_workers: int
    publish_wait_s: float
    burst_seconds: float
    switch_workers: tuple[int, ...]
    switch_settle_s: float
    soak_seconds: float
    soak_rate: float
    soak_html_share: float
    soak_writes_per_min: float
    soak_workers: int
    soak_warmup_s: float
    soak_sample_s: float


FULL = Profile(
    name="full",
    sizes=(1_000, 10_000, 100_000),
    latency_queries=3_000,
    latency_warmup=300,
    latency_max_seconds=40.0,
    computed_max_seconds=10.0,
    recall_queries=500,
    hnsw_ms=(16, 32, 48),
    ef_searches=(16, 32, 64, 128, 256),
    ef_construction=200,
    http_workers=(1, 2),
    wrk_connections=8,
    wrk_seconds=15.0,
    http_concurrency=(1, 8),
    http_requests=3_000,
    http_max_seconds=30.0,
    open_rate=200.0,
    open_seconds=20.0,
    encode_articles=96,
    encode_single=20,
    encode_threads=(0, 1),
    speedup_rounds=3,
    speedup_articles=32,
    speedup_single=10,
    ray_articles=64,
    ray_actors=(1, 2),
    scale_sample=500,
    publish_stories=20,
    publish_stream=150,
    publish_bulk=32,
    publish_deletes=5,
    publish_workers=2,
    publish_wait_s=3.0,
    burst_seconds=20.0,
    switch_workers=(1, 2),
    switch_settle_s=5.0,
    soak_seconds=300.0,
    soak_rate=200.0,
    soak_html_share=0.3,
    soak_writes_per_min=20.0,
    soak_workers=2,
    soak_warmup_s=60.0,
    soak_sample_s=1.0,
)

QUICK = Profile(
    name="quick",
    sizes=(1_000, 10_000),
    latency_queries=500,
    latency_warmup=50,
    latency_max_seconds=10.0,
    computed_max_seconds=3.0,
    recall_queries=200,
    hnsw_ms=(16, 32),
    ef_searches=(32, 128),
    ef_construction=200,
    http_workers=(1, 2),
    wrk_connections=8,
    wrk_seconds=5.0,
    http_concurrency=(1, 8),
    http_requests=500,
    http_max_seconds=10.0,
    open_rate=200.0,
    open_seconds=5.0,
    encode_articles=16,
    encode_single=5,
    encode_threads=(0, 1),
    speedup_rounds=2,
    speedup_articles=8,
    speedup_single=3,
    ray_articles=16,
    ray_actors=(1, 2),
    scale_sample=200,
    publish_stories=8,
    publish_stream=40,
    publish_bulk=16,
    publish_deletes=3,
    publish_workers=2,
    publish_wait_s=3.0,
    burst_seconds=8.0,
    switch_workers=(2,),
    switch_settle_s=3.0,
    soak_seconds=60.0,
    soak_rate=200.0,
    soak_html_share=0.3,
    soak_writes_per_min=20.0,
    soak_workers=2,
    soak_warmup_s=15.0,
    soak_sample_s=1.0,
)

PROFILES = {p.name: p for p in (FULL, QUICK)}
