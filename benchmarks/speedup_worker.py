"""Encoders against the fp32 reference in one process, interleaved:
`python -m benchmarks.speedup_worker ...`.

The reference (sentence-transformers fp32 at 512 tokens) and the candidates load first: the
default backend (`auto`, as this process's CPU flags decide; `RECOMMENDER_CPU_FLAGS` stands in
for them) at every token budget given, and with `--int8` torch's dynamic int8 quantization of
the fp32 model (weights int8, activations quantized per batch; fbgemm kernels, VNNI where the
CPU has it) at the int8 budgets. Then rounds time every encoder over the same real articles
(no cache), the order rotated each round, so load from other work on the machine falls on all
alike; per round each candidate's rate over the reference's. Single texts (`encode_one`, as
POST /related and PUT) alternate likewise. Writes a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.corpus import read_corpus_articles
from benchmarks.stats import latency_ms
from recommender.config import Settings
from recommender.embedding.backends import (
    REFERENCE_TOKENS,
    SentenceTransformerBackend,
    make_backend,
    model_id_for,
    reference_settings,
    resolve_backend,
)
from recommender.embedding.encoder import ArticleEncoder, article_text

REFERENCE = "reference"


class DynamicInt8Backend(SentenceTransformerBackend):
    """The fp32 model with its linear layers quantized by torch's dynamic int8 quantization:
    the int8 path measured where the CPU has AVX512_VNNI (a candidate, not a shipped backend)."""

    name = "torch-int8-dynamic"
    interchangeable = False

    def __init__(self, model: str, max_tokens: int) -> None:
        super().__init__(model, max_tokens)
        self.model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            self.model, {torch.nn.Linear}, dtype=torch.qint8
        )
        self.path = "int8 linear weights (torch dynamic quantization, fbgemm), fp32 elsewhere"


def _candidates(
    models_dir: Path, reference: ArticleEncoder, budgets: list[int], int8_budgets: list[int]
) -> dict[str, ArticleEncoder]:
    # The backend reads up to 512 tokens; each encoder's budget cuts its texts.
    settings = Settings(models_dir=models_dir, max_tokens=REFERENCE_TOKENS)
    backend = (
        reference.backend
        if resolve_backend(settings.backend) == reference.backend.name
        else make_backend(settings)
    )
    out: dict[str, ArticleEncoder] = {}
    for budget in budgets:
        if backend is reference.backend and budget == REFERENCE_TOKENS:
            continue  # the reference itself
        at = settings.model_copy(update={"max_tokens": budget})
        out[f"{backend.name}@{budget}"] = ArticleEncoder(
            backend, model_id_for(at), max_tokens=budget, budget_why="measured"
        )
    if int8_budgets:
        int8 = DynamicInt8Backend(settings.model_path(), REFERENCE_TOKENS)
        for budget in int8_budgets:
            out[f"{int8.name}@{budget}"] = ArticleEncoder(
                int8, f"{settings.model}+{int8.name}", max_tokens=budget, budget_why="measured"
            )
    return out


def measure(
    data: Path,
    count: int,
    single: int,
    rounds: int,
    models_dir: Path,
    budgets: list[int],
    int8_budgets: list[int],
) -> dict[str, Any]:
    reference = ArticleEncoder.from_settings(
        reference_settings(Settings(models_dir=models_dir)), use_cache=False
    )
    encoders = {REFERENCE: reference, **_candidates(models_dir, reference, budgets, int8_budgets)}
    articles = read_corpus_articles(data)
    picks = np.linspace(0, len(articles) - 1, min(count + single, len(articles))).astype(int)
    chosen = [articles[i] for i in picks]
    batch, singles = chosen[:count], chosen[count:] or chosen[:single]
    texts = [article_text(a) for a in batch]
    for enc in encoders.values():
        enc.encode_texts(texts[:2])
    names = list(encoders)
    rates: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            vectors[name] = encoders[name].encode_texts(texts)
            rates[name].append(len(texts) / (time.perf_counter() - t0))
    single_s: dict[str, list[float]] = {n: [] for n in names}
    for i, a in enumerate(singles):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            encoders[name].encode_one(a.title, a.lead, a.body)
            single_s[name].append(time.perf_counter() - t0)
    candidates = []
    for name in names[1:]:
        cos = (vectors[REFERENCE] * vectors[name]).sum(axis=1)
        ratios = [c / f for c, f in zip(rates[name], rates[REFERENCE], strict=True)]
        candidates.append(
            {
                "name": name,
                "encoder": encoders[name].describe(),
                "budget": encoders[name].budget,
                "articles_per_s": [round(x, 2) for x in rates[name]],
                "ratio_by_round": [round(x, 3) for x in ratios],
                "ratio": round(float(np.median(ratios)), 3),
                "ratio_of_totals": round(sum(rates[name]) / sum(rates[REFERENCE]), 3),
                "cosine_min": round(float(cos.min()), 6),
                "cosine_mean": round(float(cos.mean()), 6),
                "single_ms": latency_ms(single_s[name]),
            }
        )
    return {
        "reference": reference.describe(),
        "articles": len(texts),
        "rounds": rounds,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_caps": {
            k: os.environ[k]
            for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
            if k in os.environ
        },
        "reference_articles_per_s": [round(x, 2) for x in rates[REFERENCE]],
        "reference_single_ms": latency_ms(single_s[REFERENCE]),
        "candidates": candidates,
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--single", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--budgets", type=_ints, required=True, help="e.g. 128,256,384,512")
    parser.add_argument("--int8-budgets", type=_ints, default=[], help="e.g. 512,256")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(
        args.data,
        args.count,
        args.single,
        args.rounds,
        args.models_dir,
        args.budgets,
        args.int8_budgets,
    )
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
