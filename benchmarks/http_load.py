"""GET /articles/{id}/related on a real server, driven by a separate load-generating process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context import RunContext
from benchmarks.fixtures import article_id
from benchmarks.server import serve
from benchmarks.subproc import run_checked

TARGET_P99_MS = 10.0
WARMUP = 200
LOADGEN_GRACE_S = 60.0


def _loadgen(url: str, ids_file: str, offset: int, args: list[str], limit_s: float) -> Any:
    command = [sys.executable, "-m", "benchmarks.loadgen", url, ids_file]
    command += ["--offset", str(offset), *args]
    return json.loads(run_checked(command, limit_s).strip().splitlines()[-1])


def run(ctx: RunContext) -> dict[str, Any]:
    """Every request of the run asks for a different article (while the index has enough), so
    the server's response cache never answers: these are uncached times."""
    p = ctx.profile
    size = min(p.http_size, max(ctx.sizes))
    counts = [WARMUP] + [p.http_requests] * len(p.http_concurrency)
    counts.append(int(p.open_rate * p.open_seconds))
    offsets = [sum(counts[:i]) for i in range(len(counts))]
    rng = np.random.default_rng(ctx.seed)
    rows = rng.choice(size, size=sum(counts), replace=sum(counts) > size)
    ids_file = ctx.scratch / "http-ids.txt"
    ids_file.write_text("\n".join(article_id(int(r)) for r in rows))
    ids = str(ids_file)
    closed: list[dict[str, Any]] = []
    with serve(directory_for(ctx, size), ctx.settings, ctx.scratch / "server.log") as server:
        warmup = ["closed", "--concurrency", "4", "--requests", str(WARMUP), "--max-seconds", "10"]
        _loadgen(server.url, ids, offsets[0], warmup, LOADGEN_GRACE_S)
        for c, offset in zip(p.http_concurrency, offsets[1:], strict=False):
            args = ["closed", "--concurrency", str(c), "--requests", str(p.http_requests)]
            args += ["--max-seconds", str(p.http_max_seconds)]
            closed.append(
                _loadgen(server.url, ids, offset, args, p.http_max_seconds + LOADGEN_GRACE_S)
            )
        args = ["open", "--rate", str(p.open_rate), "--seconds", str(p.open_seconds)]
        opened = _loadgen(server.url, ids, offsets[-1], args, 2 * p.open_seconds + LOADGEN_GRACE_S)
        peak_rss = server.peak_rss_mib()
    return {
        "size": size,
        "endpoint": "GET /articles/{id}/related?k=5",
        "server": "recommender serve (uvicorn, 1 worker) on 127.0.0.1",
        "distinct_ids": sum(counts) <= size,
        "server_peak_rss_mib": peak_rss,
        "target": f"p99 <= {TARGET_P99_MS} ms and 0 errors at {p.open_rate:g} req/s",
        "target_met": opened["latency_ms"].get("p99", float("inf")) <= TARGET_P99_MS
        and opened["errors"] == 0,
        "closed_loop": closed,
        "open_loop": opened,
    }


def directory_for(ctx: RunContext, size: int) -> Path:
    directory, _ = ctx.collection(size)
    return directory
