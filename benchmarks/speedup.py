"""The default encoder backend against the sentence-transformers fp32 reference: the speed
ratio and cosine measured side by side (interleaved rounds in one child process), and relevance
on the dev split with each backend's vectors of the whole real corpus.

Targets (issue 10): ratio >= 2, minimum cosine >= 0.99 on every text, nDCG@10 of the default
within 0.005 of fp32 (dense, and the default pipeline).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks.context import RunContext
from benchmarks.relevance import judgement_files
from benchmarks.subproc import run_checked
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine
from recommender.eval import metrics
from recommender.eval.files import doc_ids, load_qrels, read_queries
from recommender.eval.runs import Method, run_queries
from recommender.indexing import build_index
from recommender.ranking.related import MAX_K

WORKER_TIMEOUT_S = 1800
METHODS: tuple[Method, ...] = ("dense", "pipeline")
TARGET_RATIO = 2.0
TARGET_COSINE = 0.99
TARGET_NDCG_DELTA = 0.005


def _ndcg(ctx: RunContext, backend: str | None) -> dict[str, float] | None:
    files = judgement_files(ctx.data)
    if files is None:
        return None
    if backend is None:
        directory = ctx.real_index_dir()
    else:
        directory = ctx.scratch / f"real-index-{backend}"
        settings = ctx.settings.model_copy(update={"backend": backend})
        encoder = ArticleEncoder.from_settings(settings)
        build_index(ctx.data, directory, encoder, settings, progress=False)
    queries, qrels = read_queries(files[0]), load_qrels(files[1])
    engine = Engine(directory, ctx.settings)
    try:
        out: dict[str, float] = {}
        for method in METHODS:
            runs, _ = run_queries(engine, queries, method=method, k=MAX_K)
            scores = metrics.evaluate(doc_ids(runs), qrels, queries)
            out[method] = round(float(scores["ndcg@10"]), 4)
        return out
    finally:
        engine.close()


def run(ctx: RunContext) -> dict[str, Any]:
    out = ctx.scratch / "speedup.json"
    p = ctx.profile
    command = [sys.executable, "-m", "benchmarks.speedup_worker", "--data", str(ctx.data)]
    command += ["--count", str(p.encode_articles), "--single", str(p.encode_single)]
    command += ["--rounds", str(p.speedup_rounds), "--models-dir", str(ctx.settings.models_dir)]
    run_checked([*command, "--out", str(out)], WORKER_TIMEOUT_S)
    result: dict[str, Any] = json.loads(out.read_text())
    fp32 = _ndcg(ctx, "sentence-transformers")
    default = _ndcg(ctx, None)
    result["ndcg@10"] = {"fp32": fp32, "default": default}
    if fp32 is not None and default is not None:
        result["ndcg@10_delta"] = {m: round(default[m] - fp32[m], 4) for m in METHODS}
    deltas = result.get("ndcg@10_delta", {})
    result["targets"] = {
        "ratio>=2": result["ratio"] >= TARGET_RATIO,
        "cosine_min>=0.99": result["cosine_min"] >= TARGET_COSINE,
        "ndcg@10_within_0.005": all(abs(d) <= TARGET_NDCG_DELTA for d in deltas.values())
        if deltas
        else None,
    }
    return result
