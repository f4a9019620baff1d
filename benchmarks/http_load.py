"""The website's read over HTTP: GET /articles/{id}/related?k=5 (default parameters: a lookup of
the stored list) on a real server over the real corpus, with `wrk` and the suite's own load
generator (a separate process), for each worker count.

Ids are drawn at random (with repeats: the corpus has 2,416 articles) from the articles the
index holds. Each run is bounded in time (wrk: `wrk_seconds`; the suite's closed loops: at most
`http_requests` requests and `http_max_seconds`; the open loop: `open_rate` x `open_seconds`
requests) and targets 127.0.0.1 only; the server is always stopped.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context import RunContext
from benchmarks.server import Server, serve
from benchmarks.subproc import run_checked
from recommender.engine import Engine

TARGET_WRK_RPS = 1_000.0
TARGET_WRK_P99_MS = 20.0
TARGET_OPEN_P99_MS = 10.0
WARMUP = 200
READ_K = 5
LOADGEN_GRACE_S = 60.0
WRK_SCRIPT = Path(__file__).with_name("wrk_random_ids.lua")


def loadgen(url: str, ids_file: Path, args: list[str], limit_s: float) -> Any:
    command = [sys.executable, "-m", "benchmarks.loadgen", url, str(ids_file), *args]
    return json.loads(run_checked(command, limit_s).strip().splitlines()[-1])


def wrk(url: str, ids_file: Path, connections: int, seconds: float, seed: int) -> dict[str, Any]:
    """A closed loop of `connections` keep-alive connections for `seconds` (wrk, 2 threads)."""
    threads = min(2, connections)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", "5s", "-s", str(WRK_SCRIPT), url, "--"]
    command += [str(ids_file), str(READ_K), str(seed)]
    raw = json.loads(run_checked(command, seconds + LOADGEN_GRACE_S).strip().splitlines()[-1])
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "tool": "wrk",
        "connections": connections,
        "threads": threads,
        "requests": raw["requests"],
        "errors": errors,
        "error_kinds": {k: v for k, v in raw["errors"].items() if v},
        "seconds": round(seconds_run, 3),
        "throughput_rps": round((raw["requests"] - raw["errors"]["status"]) / seconds_run, 1),
        "latency_ms": {k: round(v / 1e3, 3) for k, v in raw["latency_us"].items()},
    }


def corpus_ids_file(ctx: RunContext, directory: Path, count: int, name: str) -> Path:
    """`count` ids drawn at random from the articles the index at `directory` holds."""
    engine = Engine(directory, ctx.settings)
    try:
        ids = sorted(engine.ids())
    finally:
        engine.close()
    rows = np.random.default_rng(ctx.seed).integers(0, len(ids), size=count)
    path = ctx.scratch / name
    path.write_text("\n".join(ids[int(r)] for r in rows) + "\n")
    return path


def warm_up(server: Server, ids: Path) -> None:
    args = ["closed", "--concurrency", "4", "--requests", str(WARMUP), "--max-seconds", "10"]
    loadgen(server.url, ids, args, LOADGEN_GRACE_S)


def measure_workers(ctx: RunContext, directory: Path, ids: Path, workers: int) -> dict[str, Any]:
    p = ctx.profile
    log = ctx.scratch / f"server-http-{workers}.log"
    with serve(directory, ctx.settings, log, workers=workers) as server:
        warm_up(server, ids)
        load: dict[str, Any] = {}
        if shutil.which("wrk"):
            load["wrk"] = wrk(server.url, ids, p.wrk_connections, p.wrk_seconds, ctx.seed)
        else:
            load["wrk"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
        closed = []
        for c in p.http_concurrency:
            args = ["closed", "--concurrency", str(c), "--requests", str(p.http_requests)]
            args += ["--max-seconds", str(p.http_max_seconds)]
            closed.append(loadgen(server.url, ids, args, p.http_max_seconds + LOADGEN_GRACE_S))
        args = ["open", "--rate", str(p.open_rate), "--seconds", str(p.open_seconds)]
        opened = loadgen(server.url, ids, args, 2 * p.open_seconds + LOADGEN_GRACE_S)
        peak_rss = server.peak_rss_mib()
    w = load["wrk"]
    wrk_met = (
        None
        if "skipped" in w
        else w["throughput_rps"] >= TARGET_WRK_RPS
        and w["latency_ms"]["p99"] <= TARGET_WRK_P99_MS
        and w["errors"] == 0
    )
    open_met = (
        opened["latency_ms"].get("p99", float("inf")) <= TARGET_OPEN_P99_MS
        and opened["errors"] == 0
    )
    return {
        "workers": workers,
        "server_peak_rss_mib": peak_rss,
        "wrk": w,
        "closed_loop": closed,
        "open_loop": opened,
        "wrk_target_met": wrk_met,
        "open_target_met": open_met,
    }


def run(ctx: RunContext) -> dict[str, Any]:
    p = ctx.profile
    directory = ctx.real_index_dir()
    ids = corpus_ids_file(ctx, directory, 100_000, "http-ids.txt")
    by_workers = [measure_workers(ctx, directory, ids, w) for w in p.http_workers]
    flags = [r["wrk_target_met"] for r in by_workers] + [r["open_target_met"] for r in by_workers]
    return {
        "articles": len(set(ids.read_text().split())),
        "endpoint": f"GET /articles/{{id}}/related?k={READ_K} (default parameters: stored list)",
        "server": "recommender serve (uvicorn) on 127.0.0.1 over the real corpus (build_index)",
        "target": f"wrk {p.wrk_connections} connections: >= {TARGET_WRK_RPS:,.0f} req/s and "
        f"p99 <= {TARGET_WRK_P99_MS:g} ms; open loop {p.open_rate:g} req/s: p99 <= "
        f"{TARGET_OPEN_P99_MS:g} ms and 0 errors; for each worker count",
        "target_met": None if None in flags else all(flags),
        "by_workers": by_workers,
    }
