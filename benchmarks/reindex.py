"""Batch reindex of the whole corpus with the project's build_index: read, encode, index times.

The index step writes the generation and computes every article's stored list (final stage,
default parameters). Encoding goes through the embedding cache, so a warm cache measures
reading, hashing and cache look-ups rather than the model; the share of cached texts is
reported. Cold encoding speed is the `encoding` benchmark's throughput.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import RunContext
from benchmarks.corpus import cached_count, read_corpus_articles
from recommender.embedding.encoder import ArticleEncoder, article_text
from recommender.indexing import build_index


def run(ctx: RunContext) -> dict[str, Any]:
    encoder = ArticleEncoder.from_settings(ctx.settings)
    articles = read_corpus_articles(ctx.data)
    texts = len({encoder.text_hash(article_text(a)) for a in articles})
    cached = cached_count(encoder, articles)
    directory = ctx.scratch / "reindex"
    report = build_index(ctx.data, directory, encoder, ctx.settings, progress=False)
    ctx.real_index = directory
    summary = report.summary()
    return {
        "articles": report.indexed,
        "rows": report.rows,
        "unique_texts": texts,
        "cached_texts_before": cached,
        "cache": "warm" if cached == texts else ("cold" if cached == 0 else "partly warm"),
        "seconds": summary["seconds"],
        "total_s": summary["total_seconds"],
        "articles_per_s": summary["articles_per_second"],
        "generation": report.generation.name if report.generation else None,
    }
