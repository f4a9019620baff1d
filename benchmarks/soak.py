"""The soak: the website's reads for minutes on end while the newsroom writes, on a real server.

`recommender serve --workers soak_workers` over the real corpus, minus its newest articles, which
are published during the soak. For `soak_seconds`:
- reads: an open loop at `soak_rate` req/s (the suite's load generator in its own process;
  latency from the scheduled time, so queueing counts), random indexed ids, default parameters;
  a `soak_html_share` of them ask for the HTML box, the rest for the JSON list;
- writes: one every 60 / `soak_writes_per_min` seconds from one client with the write key, in
  a cycle of ten: seven publications (PUT of the next held-back article, oldest first), two
  corrections (PUT of an indexed article with an edited lead: re-encoded, lists rewritten) and
  one unpublication (DELETE of an article published earlier in the soak). A busy news site
  publishes a few hundred articles a day; the default of 20 writes a minute is some thirty times
  its daytime pace, so that five minutes hold a hundred writes;
- every `soak_sample_s`: the resident memory (VmRSS) of the server and each worker, from /proc;
  every 5 s: `/metrics` (list-refresh lag and log lag, of whichever worker answers).
The embedding cache is empty, so every write is encoded as a new article is.

Targets: 0 errors (reads and writes); memory flat after `soak_warmup_s`: the median total RSS
of the last window within `MEMORY_GROWTH_TARGET` of the first window after warm-up (windows of
a minute, shorter in short runs); read p99 reported against the website's open-loop target.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.context import RunContext
from benchmarks.corpus import read_corpus_articles
from benchmarks.http_load import LOADGEN_GRACE_S, TARGET_OPEN_P99_MS, corpus_ids_file, warm_up
from benchmarks.loadgen import Sample, read_samples
from benchmarks.publish import KEY, Writer
from benchmarks.server import Server, serve
from benchmarks.stats import latency_ms
from recommender.articles import Article
from recommender.embedding.encoder import ArticleEncoder
from recommender.indexing import build_index

MEMORY_GROWTH_TARGET = 0.05
WINDOW_S = 10.0
METRICS_EVERY_S = 5.0
CYCLE = ("publish",) * 7 + ("correct",) * 2 + ("unpublish",)
CORRECTION = " (Допълнена.)"
LIST_AGE = "recommender_list_refresh_lag_seconds"
LOG_LAG = "recommender_log_lag_changes"


@dataclass(frozen=True)
class Write:
    at: float
    kind: str
    id: str
    seconds: float
    error: str | None


def roles(server: Server) -> dict[int, str]:
    """What each process of the server is: `server` (the supervisor), `writer`, `reader` or
    another helper by name."""
    out = {}
    writer = server.writer_pid()
    for pid in server.pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pid == server.process.pid:
            out[pid] = "server"
        elif "resource_tracker" in command:
            out[pid] = "resource tracker"
        else:
            out[pid] = "writer" if pid == writer else "reader"
    return out


def _gauges(text: str, *names: str) -> list[float | None]:
    """The values of the named unlabelled gauges in a Prometheus text exposition."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return [values.get(name) for name in names]


class Sampler:
    """A thread sampling memory every `every` seconds and `/metrics` every METRICS_EVERY_S."""

    def __init__(self, server: Server, every: float) -> None:
        self.server, self.every = server, every
        self.memory: list[tuple[float, dict[int, float]]] = []
        self.roles: dict[int, str] = {}
        self.gauges: list[tuple[float, float | None, float | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        next_scrape = 0.0
        while not self.stop.is_set():
            now = time.time()
            memory = self.server.memory_mib()
            if set(memory) - set(self.roles):
                self.roles |= roles(self.server)
            self.memory.append((now, memory))
            if now >= next_scrape:
                next_scrape = now + METRICS_EVERY_S
                try:
                    with urllib.request.urlopen(f"{self.server.url}/metrics", timeout=2) as r:
                        text = r.read().decode()
                    age, lag = _gauges(text, LIST_AGE, LOG_LAG)
                    self.gauges.append((now, age, lag))
                except OSError:
                    self.gauges.append((now, None, None))
            self.stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def corrected(article: Article) -> Article:
    return article.model_copy(update={"lead": (article.lead or article.title) + CORRECTION})


def write_schedule(
    writes: int, held: list[Article], indexed: list[Article]
) -> Iterator[tuple[str, Article | str]]:
    """The soak's writes in order: (kind, article to PUT or id to DELETE)."""
    published: list[str] = []
    fresh, edits = iter(held), iter(indexed)
    for i in range(writes):
        kind = CYCLE[i % len(CYCLE)]
        if kind == "unpublish" and published:
            yield kind, published.pop(0)
            continue
        if kind == "publish":
            article = next(fresh, None)
            if article is not None:
                published.append(article.id)
                yield kind, article
                continue
        yield "correct", corrected(next(edits))


def write_loop(
    writer: Writer,
    schedule: Iterator[tuple[str, Article | str]],
    every: float,
    until: float,
) -> list[Write]:
    done: list[Write] = []
    due = time.time() + every / 2
    for kind, what in schedule:
        time.sleep(max(0.0, due - time.time()))
        if time.time() >= until:
            break
        due += every
        target = what if isinstance(what, str) else what.id
        t0 = time.perf_counter()
        error = None
        try:
            if isinstance(what, str):
                status, body = writer.send("DELETE", f"/articles/{what}", None, writer.auth)
                if status != 200:
                    error = f"DELETE {what}: HTTP {status} {body[:200]!r}"
            else:
                writer.put(what)
        except (OSError, RuntimeError) as exc:
            error = str(exc)[:300]
        seconds = time.perf_counter() - t0
        done.append(Write(time.time(), kind, target, seconds, error))
    return done


def windows(rows: list[Sample], start: float, width: float) -> list[dict[str, Any]]:
    """Per window of `width` seconds: requests, errors and the latency of the answered."""
    by: dict[int, list[Sample]] = {}
    for row in rows:
        by.setdefault(int((row[0] - start) // width), []).append(row)
    out = []
    for w in sorted(by):
        inside = by[w]
        lat = latency_ms([r[1] for r in inside if r[2] == "-"])
        out.append(
            {
                "t_s": round(w * width, 1),
                "requests": len(inside),
                "errors": sum(r[2] != "-" for r in inside),
                "p50_ms": lat.get("p50"),
                "p99_ms": lat.get("p99"),
            }
        )
    return out


def memory_summary(
    memory: list[tuple[float, dict[int, float]]],
    start: float,
    warmup: float,
    end: float,
    named: dict[int, str] | None = None,
) -> dict[str, Any]:
    total = [(t - start, sum(m.values())) for t, m in memory if m]
    span = end - start
    width = max(1.0, min(60.0, (span - warmup) / 3))
    first = [v for t, v in total if warmup <= t < warmup + width]
    last = [v for t, v in total if span - width <= t <= span]
    after = [(t, v) for t, v in total if t >= warmup]
    first_mib = float(np.median(first)) if first else None
    last_mib = float(np.median(last)) if last else None
    growth = (last_mib - first_mib) / first_mib if first_mib and last_mib else None
    slope = None
    if len(after) >= 2:
        slope = float(np.polyfit([t for t, _ in after], [v for _, v in after], 1)[0]) * 60
    pids = sorted({pid for _, m in memory for pid in m})
    return {
        "window_s": round(width, 1),
        "first_window_mib": round(first_mib, 1) if first_mib else None,
        "last_window_mib": round(last_mib, 1) if last_mib else None,
        "growth": round(growth, 4) if growth is not None else None,
        "slope_mib_per_min": round(slope, 2) if slope is not None else None,
        "peak_mib": round(max(v for _, v in total), 1) if total else None,
        "processes": [(named or {}).get(p, "?") for p in pids],
        "series": [
            {"t_s": round(t - start, 1), "mib": [round(m.get(p, 0.0), 1) for p in pids]}
            for t, m in memory
        ],
        "target_met": growth is not None and growth <= MEMORY_GROWTH_TARGET,
    }


def _reads(rows: list[Sample], kind: str | None = None) -> dict[str, Any]:
    chosen = [r for r in rows if kind is None or r[3] == kind]
    errors: dict[str, int] = {}
    for r in chosen:
        if r[2] != "-":
            errors[r[2]] = errors.get(r[2], 0) + 1
    return {
        "requests": len(chosen),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "latency_ms": latency_ms([r[1] for r in chosen if r[2] == "-"]),
    }


def _writes(writes: list[Write]) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(w.kind for w in writes):
        chosen = [w for w in writes if w.kind == kind]
        kinds[kind] = {
            "count": len(chosen),
            "errors": sum(w.error is not None for w in chosen),
            "latency_ms": latency_ms([w.seconds for w in chosen]),
        }
    return {
        "count": len(writes),
        "errors": sum(w.error is not None for w in writes),
        "first_errors": [w.error for w in writes if w.error][:5],
        "by_kind": kinds,
    }


def run(ctx: RunContext) -> dict[str, Any]:
    p = ctx.profile
    articles = read_corpus_articles(ctx.data)
    writes = int(p.soak_seconds * p.soak_writes_per_min / 60)
    publications = sum(CYCLE[i % len(CYCLE)] == "publish" for i in range(writes))
    dated = sorted((a for a in articles if a.published), key=lambda a: (a.published, a.id))
    held = dated[-publications:] if publications else []
    held_ids = {a.id for a in held}
    indexed = [a for a in articles if a.id not in held_ids]
    data = ctx.scratch / "soak-input.jsonl"
    data.write_bytes(b"".join(orjson.dumps(a.model_dump(mode="json")) + b"\n" for a in indexed))
    directory = ctx.scratch / "soak-index"
    encoder = ArticleEncoder.from_settings(ctx.settings)
    build_index(data, directory, encoder, ctx.settings, progress=False)
    ids = corpus_ids_file(ctx, directory, 200_000, "soak-ids.txt")
    edits = [indexed[int(i)] for i in np.random.default_rng(ctx.seed).permutation(len(indexed))]
    env = {
        "RECOMMENDER_API_KEYS": KEY,
        "RECOMMENDER_CACHE_PATH": str(ctx.scratch / "soak-empty-cache.sqlite"),
    }
    samples = ctx.scratch / "soak-samples.txt"
    log = ctx.scratch / "server-soak.log"
    with serve(directory, ctx.settings, log, workers=p.soak_workers, env=env) as server:
        warm_up(server, ids)
        command = [sys.executable, "-m", "benchmarks.loadgen", server.url, str(ids), "open"]
        command += ["--rate", str(p.soak_rate), "--seconds", str(p.soak_seconds)]
        command += ["--samples", str(samples), "--html-share", str(p.soak_html_share)]
        with Sampler(server, p.soak_sample_s) as sampler:
            start = time.time()
            reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                done = write_loop(
                    Writer(server.url),
                    write_schedule(writes, held, edits),
                    60 / p.soak_writes_per_min,
                    start + p.soak_seconds,
                )
                out, err = reader.communicate(timeout=2 * p.soak_seconds + LOADGEN_GRACE_S)
            finally:
                if reader.poll() is None:
                    reader.kill()
                    reader.wait()
            end = time.time()
        if reader.returncode != 0:
            raise RuntimeError(f"loadgen exited {reader.returncode}: {err.decode()[-2000:]}")
    summary = orjson.loads(out.decode().strip().splitlines()[-1])
    rows = read_samples(samples)
    after = [r for r in rows if r[0] - start >= p.soak_warmup_s]
    reads = _reads(rows) | {"offered": summary["offered"], "send_rate": summary["send_rate"]}
    wrote = _writes(done)
    memory = memory_summary(sampler.memory, start, p.soak_warmup_s, end, sampler.roles)
    lags = [g for g in sampler.gauges if g[1] is not None]
    p99 = _reads(after)["latency_ms"].get("p99")
    errors_met = reads["errors"] == 0 and wrote["errors"] == 0 and reads["requests"] > 0
    return {
        "articles": len(indexed),
        "workers": p.soak_workers,
        "seconds": round(end - start, 1),
        "rate": p.soak_rate,
        "html_share": p.soak_html_share,
        "writes_per_min": p.soak_writes_per_min,
        "warmup_s": p.soak_warmup_s,
        "target": f"0 errors; memory after {p.soak_warmup_s:g} s warm-up within "
        f"{MEMORY_GROWTH_TARGET:.0%}; read p99 after warm-up <= {TARGET_OPEN_P99_MS:g} ms",
        "errors_target_met": errors_met,
        "p99_target_met": p99 is not None and p99 <= TARGET_OPEN_P99_MS,
        "target_met": errors_met and memory["target_met"],
        "reads": reads,
        "reads_after_warmup": _reads(after),
        "reads_json": _reads(rows, "json"),
        "reads_html": _reads(rows, "html"),
        "windows": windows(rows, start, WINDOW_S),
        "writes": wrote,
        "write_times_s": [round(w.at - start, 1) for w in done],
        "memory": memory,
        "list_refresh_lag_s_max": max((g[1] for g in lags if g[1] is not None), default=None),
        "log_lag_changes_max": max((g[2] for g in lags if g[2] is not None), default=None),
        "metrics_scrapes": len(sampler.gauges),
    }
