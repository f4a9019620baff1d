"""The default backend against the fp32 reference in one process, interleaved:
`python -m benchmarks.speedup_worker ...`.

Both encoders (no cache) load first; then rounds alternate fp32 and the default backend over
the same real articles, so load from other work on the machine falls on both alike. Per round
the ratio of the two rates; single texts (`encode_one`, as POST /related) alternate likewise.
Writes a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmarks.corpus import read_corpus_articles
from benchmarks.stats import latency_ms
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder, article_text

REFERENCE: Literal["sentence-transformers"] = "sentence-transformers"


def measure(data: Path, count: int, single: int, rounds: int, models_dir: Path) -> dict[str, Any]:
    fp32 = ArticleEncoder.from_settings(
        Settings(backend=REFERENCE, models_dir=models_dir), use_cache=False
    )
    fast = ArticleEncoder.from_settings(Settings(models_dir=models_dir), use_cache=False)
    articles = read_corpus_articles(data)
    picks = np.linspace(0, len(articles) - 1, min(count + single, len(articles))).astype(int)
    chosen = [articles[i] for i in picks]
    batch, singles = chosen[:count], chosen[count:] or chosen[:single]
    texts = [article_text(a) for a in batch]
    fp32.encode_texts(texts[:2])
    fast.encode_texts(texts[:2])
    rates: dict[str, list[float]] = {"fp32": [], "fast": []}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        order = [("fp32", fp32), ("fast", fast)] if r % 2 == 0 else [("fast", fast), ("fp32", fp32)]
        for name, enc in order:
            t0 = time.perf_counter()
            vectors[name] = enc.encode_texts(texts)
            rates[name].append(len(texts) / (time.perf_counter() - t0))
    single_s: dict[str, list[float]] = {"fp32": [], "fast": []}
    for a in singles:
        for name, enc in (("fp32", fp32), ("fast", fast)):
            t0 = time.perf_counter()
            enc.encode_one(a.title, a.lead, a.body)
            single_s[name].append(time.perf_counter() - t0)
    cos = (vectors["fp32"] * vectors["fast"]).sum(axis=1)
    ratios = [f / s for f, s in zip(rates["fast"], rates["fp32"], strict=True)]
    p50 = {k: latency_ms(v) for k, v in single_s.items()}
    return {
        "reference": fp32.describe(),
        "default": fast.describe(),
        "articles": len(texts),
        "rounds": rounds,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "fp32_articles_per_s": [round(x, 2) for x in rates["fp32"]],
        "default_articles_per_s": [round(x, 2) for x in rates["fast"]],
        "ratio_by_round": [round(x, 3) for x in ratios],
        "ratio": round(float(np.median(ratios)), 3),
        "ratio_of_totals": round(sum(rates["fast"]) / sum(rates["fp32"]), 3),
        "cosine_min": round(float(cos.min()), 6),
        "cosine_mean": round(float(cos.mean()), 6),
        "single_ms": p50,
        "single_p50_ratio": round(p50["fp32"]["p50"] / p50["fast"]["p50"], 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--single", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(args.data, args.count, args.single, args.rounds, args.models_dir)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
