"""One encoder backend measured in its own process: `python -m benchmarks.encode_worker ...`.

Writes a JSON object: batch throughput (articles/s, tokens/s) on real articles without the
cache, single-text latency (encode_one, as POST /related does) and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.corpus import read_corpus_articles
from benchmarks.stats import latency_ms
from recommender.config import Settings
from recommender.embedding.backends import BACKENDS
from recommender.embedding.encoder import ArticleEncoder, article_text


def token_counts(encoder: ArticleEncoder, texts: list[str]) -> list[int]:
    """Tokens the model runs per text: prompt, the kept window(s) and special tokens."""
    tokenizer = encoder.backend.tokenizer
    prompt = encoder.backend.prompt
    return [
        sum(len(tokenizer(prompt + w, verbose=False)["input_ids"]) for w in encoder.windows(t))
        for t in texts
    ]


def peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    does not: it keeps the high-water mark of the forking parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(backend: str, data: Path, count: int, single: int, models_dir: Path) -> dict[str, Any]:
    settings = Settings(backend=backend, models_dir=models_dir)  # type: ignore[arg-type]
    started = time.perf_counter()
    encoder = ArticleEncoder.from_settings(settings, use_cache=False)
    load_s = time.perf_counter() - started
    articles = read_corpus_articles(data)
    picks = np.linspace(0, len(articles) - 1, min(count + single, len(articles))).astype(int)
    chosen = [articles[i] for i in picks]
    batch, singles = chosen[:count], chosen[count:] or chosen[:single]
    texts = [article_text(a) for a in batch]
    tokens = token_counts(encoder, texts)
    encoder.encode_texts(texts[:2])
    t0 = time.perf_counter()
    encoder.encode_texts(texts)
    batch_s = time.perf_counter() - t0
    times = []
    for a in singles:
        t0 = time.perf_counter()
        encoder.encode_one(a.title, a.lead, a.body)
        times.append(time.perf_counter() - t0)
    return {
        "backend": backend,
        "articles": len(texts),
        "tokens": int(sum(tokens)),
        "mean_tokens": round(float(np.mean(tokens)), 1),
        "token_counts": tokens,
        "batch_size": settings.batch_size,
        "model_load_s": round(load_s, 2),
        "batch_s": round(batch_s, 3),
        "articles_per_s": round(len(texts) / batch_s, 2),
        "tokens_per_s": round(sum(tokens) / batch_s, 1),
        "single_ms": latency_ms(times),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", required=True, choices=list(BACKENDS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--single", type=int, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(args.backend, args.data, args.count, args.single, args.models_dir)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
