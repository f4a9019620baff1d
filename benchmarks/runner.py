"""Runs the chosen benchmarks and writes `<results>/<timestamp>-<commit>.json|.md|-*.png`."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import (
    encoding,
    http_load,
    latency,
    publish,
    ray_scaling,
    recall,
    reindex,
    relevance,
    soak,
    speedup,
    switch,
)
from benchmarks.context import RunContext
from benchmarks.machine import git_info, machine_info, versions
from benchmarks.plots import write_plots
from benchmarks.report import write_reports

Benchmark = Callable[[RunContext], dict[str, Any]]
BENCHMARKS: dict[str, Benchmark] = {
    "latency": latency.run,
    "recall": recall.run,
    "http": http_load.run,
    "publish": publish.run,
    "switch": switch.run,
    "soak": soak.run,
    "encoding": encoding.run,
    "reindex": reindex.run,
    "relevance": relevance.run,
    "speedup": speedup.run,
    "ray": ray_scaling.run,
}


def run_suite(ctx: RunContext, names: list[str], results_dir: Path, argv: list[str]) -> Path:
    """Run `names` in order; a failing benchmark is recorded and the others still run."""
    started = datetime.now(UTC)
    git = git_info()
    doc: dict[str, Any] = {
        "schema": 1,
        "started": started.isoformat(),
        "command": ["python", "-m", "benchmarks", *argv],
        "git": git,
        "machine": machine_info(),
        "versions": versions(),
        "settings": {
            "profile": asdict(ctx.profile),
            "sizes": list(ctx.sizes),
            "data": str(ctx.data),
            "seed": ctx.seed,
            "model": ctx.settings.model,
            "batch_size": ctx.settings.batch_size,
            "text_strategy": ctx.settings.text_strategy,
            "max_tokens": ctx.settings.max_tokens,
            "benchmarks": names,
        },
        "results": ctx.results,
        "errors": {},
    }
    for name in names:
        t0 = time.perf_counter()
        print(f"[benchmarks] {name} ...", flush=True)
        try:
            result = BENCHMARKS[name](ctx)
        except Exception:
            doc["errors"][name] = traceback.format_exc()
            print(doc["errors"][name], flush=True)
            continue
        ctx.results[name] = result | {"wall_s": round(time.perf_counter() - t0, 1)}
        print(f"[benchmarks] {name} done in {ctx.results[name]['wall_s']} s", flush=True)
    finished = datetime.now(UTC)
    doc["finished"] = finished.isoformat()
    doc["duration_s"] = round((finished - started).total_seconds(), 1)
    doc["machine"]["load_average_end"] = machine_info()["load_average"]
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{git['short']}"
    path = results_dir / f"{stem}.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    plots = write_plots(doc, results_dir, stem)
    write_reports(doc, results_dir, stem, plots)
    return path
