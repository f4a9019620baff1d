"""The default encoder against the sentence-transformers fp32 reference at 512 tokens, on two
machine classes: speed ratios and cosine measured side by side (interleaved rounds in one child
process per class, `benchmarks.speedup_worker`) for the default backend at every token budget,
and relevance on the dev split with each budget's vectors of the whole real corpus.

Machine classes: `native` is this CPU as it is. `avx2-emulated` stands for an AVX2-only CPU
(issue 17's AMD EPYC: `fma avx f16c avx2`, no AVX-512): torch, oneDNN and MKL are capped to
AVX2 (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`, `MKL_ENABLE_INSTRUCTIONS`) and
`RECOMMENDER_CPU_FLAGS` makes `auto` decide as on that CPU. Its figures are emulated, not
measured on an AVX2 CPU: the cores, caches and clocks are still this machine's, and MKL documents
its cap for Intel processors only. It runs only where this CPU has AVX-512: on a CPU without it
the caps change nothing, so `native` is itself the AVX2 class, measured (`avx2_class` says
which machine the AVX2 figures come from, and whether they are emulated).

The box: with the story ruler beside the data (`dev_stories.tsv`), each budget's stored lists
(the default ranking's final stage, as the website shows them; top 5) are scored on it by the
eval bench's own functions (`recommender.eval.scoring.score` and `compare`, as `recommender eval
score --compare`): story recall@5, copies@5 and useful distinct@5, and a paired randomization
test of each budget against 512 on useful distinct@5. A budget's box is no worse than 512's
unless its mean useful distinct@5 is lower with p < 0.05. The default budget by issue 17's
rule (`budget_by_rule`) is the cheapest whose pipeline nDCG@10 is within 0.005 of 512's and
whose box is no worse. Without a ruler (the sample corpus) the box figures are None.

Targets (issue 17), for the default (backend `auto`, the configured budget): >= 2x on the AVX2
class and >= 3x on a CPU with AVX512_BF16, at pipeline nDCG@10 within 0.005 of 512 tokens';
the backend's vectors at 512 tokens pass the cosine rule (min >= 0.99); single-text encode p50
<= 60 ms at the chosen budget; the default's box no worse than 512's. With AVX512_VNNI the int8
path is measured too: it becomes a default only if it passes the cosine rule (and then the
relevance guard).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.context import RunContext
from benchmarks.relevance import STORIES, judgement_files
from benchmarks.subproc import run_checked
from recommender.embedding.backends import (
    CPU_FLAGS_ENV,
    INT8_FLAGS,
    REFERENCE_TOKENS,
    cpu_flags,
    has_bf16,
    resolve_backend,
)
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine
from recommender.eval import metrics
from recommender.eval.files import Run, doc_ids, load_qrels, read_queries
from recommender.eval.runs import Method, run_queries
from recommender.eval.scoring import compare, score
from recommender.eval.significance import ALPHA
from recommender.indexing import build_index
from recommender.ranking.related import K_LIMIT

WORKER_TIMEOUT_S = 3600
METHODS: tuple[Method, ...] = ("dense", "pipeline")
BUDGETS = (128, 256, 384, 512)
AVX2_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma bmi1 bmi2 avx2"
MACHINES: dict[str, dict[str, str]] = {
    "native": {},
    "avx2-emulated": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        CPU_FLAGS_ENV: AVX2_FLAGS,
    },
}
TARGET_RATIO_AVX2 = 2.0
TARGET_RATIO_BF16 = 3.0
TARGET_COSINE = 0.99
TARGET_NDCG_DELTA = 0.005
TARGET_SINGLE_MS = 60.0
AVX512_FLAG = "avx512f"
BOX_METRICS = ("happening_recall@5", "copies@5", "useful_distinct@5", "unjudged@5")
BOX_PAIRED = "useful_distinct@5"


def _relevance(ctx: RunContext, budget: int) -> tuple[dict[str, float] | None, Run | None]:
    """Dev nDCG@10 of the default backend's vectors at `budget` (the embedding cache keeps
    each budget's apart, so a budget is encoded once), ranked by the hand fusion: the default
    ranking model is trained on the dev judgements, so it would score in sample. And the
    stored lists of that index (the default ranking's final stage: the box), for the ruler."""
    files = judgement_files(ctx.data)
    if files is None:
        return None, None
    default = ctx.settings.model_copy(update={"max_tokens": budget})
    hand = default.model_copy(
        update={"ranking": default.ranking.model_copy(update={"model": None})}
    )
    directory = ctx.scratch / f"real-index-{budget}tok"
    build_index(ctx.data, directory, ArticleEncoder.from_settings(default), default, progress=False)
    queries, qrels = read_queries(files[0]), load_qrels(files[1])
    engine, stored_by = Engine(directory, hand), Engine(directory, default)
    try:
        out: dict[str, float] = {}
        for method in METHODS:
            runs, _ = run_queries(engine, queries, method=method, k=K_LIMIT)
            scores = metrics.evaluate(doc_ids(runs), qrels, queries)
            out[method] = round(float(scores["ndcg@10"]), 4)
        stored, _ = run_queries(stored_by, queries, method="stored", k=K_LIMIT)
        return out, stored
    finally:
        engine.close()
        stored_by.close()


def box_by_budget(
    ruler_path: Path, queries: list[str], stored: dict[int, Run] | dict[int, dict[str, list[str]]]
) -> dict[str, Any]:
    """Each budget's box on the story ruler (means over the ruled queries) and, for every
    budget but the reference's, the paired randomization test against it on useful
    distinct@5: the eval bench's `score` and `compare`, as `eval score --compare`."""
    ruler = load_qrels(ruler_path)
    ruled = [q for q in queries if q in ruler.ruled]
    runs = {
        str(b): stored[b] for b in (REFERENCE_TOKENS, *(b for b in stored if b != REFERENCE_TOKENS))
    }
    means = {r["run"]: r for r in score(runs, ruler, ruled)}
    tests = {r["run"]: r for r in compare(runs, ruler, ruled, metric_names=(BOX_PAIRED,))}
    by_budget: dict[str, dict[str, Any]] = {}
    for name in runs:
        row: dict[str, Any] = {m: round(float(means[name][m]), 4) for m in BOX_METRICS}
        row["scored_ruler"] = means[name]["scored_ruler"]
        t = tests.get(name)
        if t is not None:
            row["vs_512"] = {
                "metric": BOX_PAIRED,
                "delta": round(float(t["delta"]), 4),
                "p_value": round(float(t["p_value"]), 4),
                "improved": t["improved"],
                "worse": t["worse"],
                "queries": t["queries"],
                "test": t["test"],
            }
        # no worse: not lower with p < ALPHA (the reference is no worse than itself)
        row["no_worse_than_512"] = t is None or not (t["delta"] < 0 and t["p_value"] < ALPHA)
        by_budget[name] = row
    return {
        "ruler": ruler_path.name,
        "ruled_queries": len(ruled),
        "rule": f"no worse than 512: mean {BOX_PAIRED} not lower with p < {ALPHA} "
        "(paired randomization test, two-sided, over the ruled queries)",
        "by_budget": by_budget,
    }


def _box(ctx: RunContext, stored: dict[int, Run | None]) -> dict[str, Any]:
    files = judgement_files(ctx.data)
    ruler = ctx.data.with_name(STORIES)
    if files is None or not ruler.is_file():
        return {"skipped": f"no story ruler ({STORIES}) and judgements beside {ctx.data}"}
    runs = {b: r for b, r in stored.items() if r is not None}
    return box_by_budget(ruler, read_queries(files[0]), runs)


def budget_by_rule(rows: list[dict[str, Any]]) -> int | None:
    """Issue 17's default: the cheapest budget whose pipeline nDCG@10 is within 0.005 of
    512's and whose box is no worse; None when either is not measured."""
    for row in sorted(rows, key=lambda r: r["budget"]):
        t = row["targets"]
        near, box = t["pipeline_ndcg@10_within_0.005_of_512"], t["box_no_worse_than_512"]
        if near is None or box is None:
            return None
        if near and box:
            return int(row["budget"])
    return None


def _machine(ctx: RunContext, name: str, env: dict[str, str]) -> dict[str, Any]:
    out = ctx.scratch / f"speedup-{name}.json"
    p = ctx.profile
    int8 = name == "native" and any(f in cpu_flags() for f in INT8_FLAGS)
    command = [sys.executable, "-m", "benchmarks.speedup_worker", "--data", str(ctx.data)]
    command += ["--count", str(p.speedup_articles), "--single", str(p.speedup_single)]
    command += ["--rounds", str(p.speedup_rounds), "--models-dir", str(ctx.settings.models_dir)]
    command += ["--budgets", ",".join(map(str, BUDGETS))]
    command += ["--int8-budgets", str(REFERENCE_TOKENS) if int8 else ""]
    run_checked([*command, "--out", str(out)], WORKER_TIMEOUT_S, env={**os.environ, **env})
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def machine_classes(flags: frozenset[str]) -> dict[str, dict[str, str]]:
    """The machine classes to measure on a CPU with `flags`: the AVX2 emulation only where
    the CPU has AVX-512 (without it, the caps change nothing: `native` is the AVX2 class)."""
    if AVX512_FLAG in flags:
        return MACHINES
    return {"native": MACHINES["native"]}


def avx2_class(flags: frozenset[str], measured: dict[str, Any]) -> dict[str, Any]:
    """Which measured machine the AVX2-class figures come from, and whether emulated."""
    if "avx2-emulated" in measured:
        return {"machine": "avx2-emulated", "emulated": True}
    if "avx2" in flags and AVX512_FLAG not in flags:
        return {"machine": "native", "emulated": False}
    return {"machine": None, "emulated": None}  # an older CPU: no AVX2 class measured


def _candidate(machine: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in machine["candidates"] if c["name"] == name), None)


def _by_budget(
    machines: dict[str, dict[str, Any]],
    relevance: dict[int, dict[str, float] | None],
    box: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per budget: speed ratio and single-text p50 per machine class, cosine to the
    reference, dev nDCG@10 and the box on the story ruler (None without one)."""
    rows = []
    boxes = box.get("by_budget", {})
    for budget in BUDGETS:
        row: dict[str, Any] = {"budget": budget, "ndcg@10": relevance.get(budget)}
        row["box"] = boxes.get(str(budget))
        for name in machines:
            backend = _default_backend(MACHINES[name])
            c = _candidate(machines[name], f"{backend}@{budget}")
            if c is None:  # the reference itself
                ref = machines[name]
                row[name] = {"backend": backend, "ratio": 1.0, "cosine_min": 1.0}
                row[name] |= {"cosine_mean": 1.0}
                row[name]["single_p50_ms"] = ref["reference_single_ms"]["p50"]
                continue
            row[name] = {
                "backend": backend,
                "ratio": c["ratio"],
                "ratio_by_round": c["ratio_by_round"],
                "articles_per_s": c["articles_per_s"],
                "cosine_min": c["cosine_min"],
                "cosine_mean": c["cosine_mean"],
                "single_p50_ms": c["single_ms"]["p50"],
            }
        rows.append(row)
    return rows


def _default_backend(env: dict[str, str]) -> str:
    flags = frozenset(env[CPU_FLAGS_ENV].split()) if CPU_FLAGS_ENV in env else None
    return resolve_backend("auto", flags)


def _targets(
    row: dict[str, Any], full: dict[str, Any], bf16: bool, avx2: str | None
) -> dict[str, bool | None]:
    """Issue 17's targets for the default backend at one budget (`full`: the 512 row; `avx2`:
    the machine whose figures are the AVX2 class's)."""
    n, f = row["ndcg@10"], full["ndcg@10"]
    targets: dict[str, bool | None] = {
        "avx2_class_ratio>=2": row[avx2]["ratio"] >= TARGET_RATIO_AVX2 if avx2 else None,
        "bf16_cpu_ratio>=3": row["native"]["ratio"] >= TARGET_RATIO_BF16 if bf16 else None,
        "pipeline_ndcg@10_within_0.005_of_512": abs(n["pipeline"] - f["pipeline"])
        <= TARGET_NDCG_DELTA
        if n and f
        else None,
        "box_no_worse_than_512": row["box"]["no_worse_than_512"] if row["box"] else None,
    }
    for name in MACHINES:
        if name in row:
            key = f"single_p50<=60ms_{name.replace('-', '_')}"
            targets[key] = row[name]["single_p50_ms"] <= TARGET_SINGLE_MS
    return targets


def run(ctx: RunContext) -> dict[str, Any]:
    flags = cpu_flags()
    machines = {name: _machine(ctx, name, env) for name, env in machine_classes(flags).items()}
    measured = {b: _relevance(ctx, b) for b in BUDGETS}
    relevance = {b: m[0] for b, m in measured.items()}
    box = _box(ctx, {b: m[1] for b, m in measured.items()})
    rows = _by_budget(machines, relevance, box)
    full = next(r for r in rows if r["budget"] == REFERENCE_TOKENS)
    bf16 = has_bf16(flags)
    avx2 = avx2_class(flags, machines)
    for row in rows:
        row["targets"] = _targets(row, full, bf16, avx2["machine"])
    default = ctx.settings.max_tokens
    by_rule = budget_by_rule(rows)
    chosen = next((r for r in rows if r["budget"] == default), None)
    targets: dict[str, bool | None] = dict(chosen["targets"]) if chosen else {}
    targets["box_no_worse_than_512_at_default"] = targets.pop("box_no_worse_than_512", None)
    targets["default_budget_is_the_rule's"] = default == by_rule if by_rule else None
    targets["backend_cosine_min>=0.99_at_512"] = full["native"]["cosine_min"] >= TARGET_COSINE
    int8 = [c for c in machines["native"]["candidates"] if "int8" in c["name"]]
    if int8:
        targets["int8_cosine_min>=0.99"] = min(c["cosine_min"] for c in int8) >= TARGET_COSINE
    return {
        "default_budget": default,
        "budget_by_rule": by_rule,
        "native_has_bf16": bf16,
        "native_has_avx512": AVX512_FLAG in flags,
        "avx2_class": avx2,
        "machines": machines,
        "box": {k: v for k, v in box.items() if k != "by_budget"},
        "by_budget": rows,
        "int8": int8,
        "targets": targets,
    }
