"""Reindex and switch under load: `recommender index build` of the corpus into the index a real
server serves, while the suite's open-loop generator reads at `open_rate` req/s.

Per worker count: the server starts over the real corpus index; reads start (default
parameters, random ids, every request's time and latency recorded); after `switch_settle_s`
the CLI rebuilds the index (warm embedding cache) into a new generation and switches to it;
a watcher records the moment CURRENT changes; reads go on until every worker answers /readyz
with the new generation (or `switch_settle_s` x 4 pass) plus `switch_settle_s`. Reported:
failed requests (target 0) and latency before the build, during it, in the second around the
switch and after, whether the workers switched and whether the old generation was removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from benchmarks.http_load import LOADGEN_GRACE_S, corpus_ids_file, warm_up
from benchmarks.loadgen import read_samples
from benchmarks.server import Server, serve
from benchmarks.stats import latency_ms
from recommender.storage.generations import IndexDir

BUILD_TIMEOUT_S = 900.0
MAX_READ_S = 1_200.0
AROUND_S = 1.0


def _watch(index: IndexDir, stop: threading.Event, seen: list[float]) -> None:
    before = index.version()
    while not stop.wait(0.005):
        if index.version() != before:
            seen.append(time.time())
            return


def _generations_served(server: Server, probes: int) -> set[str]:
    names = set()
    for _ in range(probes):
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as answer:
                names.add(json.loads(answer.read())["generation"])
        except OSError:
            names.add("unreachable")
    return names


def _windows(samples: Path, build: tuple[float, float], switched: float | None) -> dict[str, Any]:
    rows = read_samples(samples)
    spans = {
        "before_build": (float("-inf"), build[0]),
        "during_build": (build[0], build[1]),
        "after_build": (build[1], float("inf")),
    }
    if switched is not None:
        spans["around_switch"] = (switched - AROUND_S, switched + AROUND_S)
    out: dict[str, Any] = {}
    for name, (lo, hi) in spans.items():
        inside = [r for r in rows if lo <= r[0] < hi]
        out[name] = {
            "requests": len(inside),
            "errors": sum(r[2] != "-" for r in inside),
            "latency_ms": latency_ms([r[1] for r in inside if r[2] == "-"]),
        }
    return out


def measure_workers(ctx: RunContext, directory: Path, ids: Path, workers: int) -> dict[str, Any]:
    p = ctx.profile
    index = IndexDir(directory)
    stop_file = ctx.scratch / f"switch-stop-{workers}"
    samples = ctx.scratch / f"switch-samples-{workers}.txt"
    log = ctx.scratch / f"server-switch-{workers}.log"
    with serve(directory, ctx.settings, log, workers=workers) as server:
        warm_up(server, ids)
        old = index.current().name
        command = [sys.executable, "-m", "benchmarks.loadgen", server.url, str(ids), "open"]
        command += ["--rate", str(p.open_rate), "--seconds", str(MAX_READ_S)]
        command += ["--stop-file", str(stop_file), "--samples", str(samples)]
        reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stop, seen = threading.Event(), []  # type: ignore[var-annotated]
        watcher = threading.Thread(target=_watch, args=(index, stop, seen), daemon=True)
        watcher.start()
        try:
            time.sleep(p.switch_settle_s)
            env = os.environ | {"RECOMMENDER_CACHE_PATH": str(ctx.settings.cache_path.resolve())}
            build = [sys.executable, "-m", "recommender.cli", "index", "build"]
            build += ["--input", str(ctx.data), "--index", str(directory), "--no-progress"]
            started = time.time()
            done = subprocess.run(
                build, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env, check=False
            )
            finished = time.time()
            if done.returncode != 0:
                raise RuntimeError(f"index build exited {done.returncode}: {done.stderr[-2000:]}")
            new = index.current().name
            deadline = time.monotonic() + 4 * p.switch_settle_s
            served = _generations_served(server, 4 * workers)
            while served != {new} and time.monotonic() < deadline:
                time.sleep(0.2)
                served = _generations_served(server, 4 * workers)
            time.sleep(p.switch_settle_s)
        finally:
            stop_file.touch()
            stop.set()
            out, err = reader.communicate(timeout=2 * LOADGEN_GRACE_S)
        if reader.returncode != 0:
            raise RuntimeError(f"loadgen exited {reader.returncode}: {err.decode()[-2000:]}")
        summary = json.loads(out.decode().strip().splitlines()[-1])
    switched = seen[0] if seen else None
    left = sorted(g.name for g in index.generations())
    return {
        "workers": workers,
        "build_s": round(finished - started, 2),
        "switch_after_build_start_s": round(switched - started, 2) if switched else None,
        "generation_before": old,
        "generation_after": new,
        "served_after": sorted(served),
        "generations_on_disk": left,
        "old_removed": old not in left,
        "reads": summary,
        "windows": _windows(samples, (started, finished), switched),
        "target_met": summary["errors"] == 0 and served == {new},
    }


def run(ctx: RunContext) -> dict[str, Any]:
    directory = ctx.real_index_dir()
    ids = corpus_ids_file(ctx, directory, 100_000, "switch-ids.txt")
    by_workers = [measure_workers(ctx, directory, ids, w) for w in ctx.profile.switch_workers]
    return {
        "rate": ctx.profile.open_rate,
        "target": f"0 failed requests at {ctx.profile.open_rate:g} req/s through a rebuild and "
        "switch, every worker on the new generation",
        "target_met": all(r["target_met"] for r in by_workers),
        "by_workers": by_workers,
    }
