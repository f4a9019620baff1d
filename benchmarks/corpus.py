"""The real corpus: its articles (read at run time, never copied) and their e5 vectors.

Vectors come from the project's ArticleEncoder through its SQLite embedding cache, so the first
run encodes every article (minutes) and later runs read the cache (seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder, article_text
from recommender.inputs import read_articles


@dataclass(frozen=True)
class Corpus:
    path: Path
    articles: list[Article]
    vectors: np.ndarray
    cached: int
    seconds: float

    def __len__(self) -> int:
        return len(self.articles)


def read_corpus_articles(path: Path) -> list[Article]:
    """Valid articles of `path`; a repeated id keeps the later row, as indexing does."""
    by_id: dict[str, Article] = {}
    for item in read_articles(path):
        if isinstance(item, Article):
            by_id[item.id] = item
    if not by_id:
        raise ValueError(f"{path}: no valid articles")
    return list(by_id.values())


def cached_count(encoder: ArticleEncoder, articles: list[Article]) -> int:
    """How many of the articles' texts the embedding cache already holds."""
    if encoder.cache is None:
        return 0
    hashes = list({encoder.text_hash(article_text(a)) for a in articles})
    return len(encoder.cache.get_many(encoder.cache_key, hashes, encoder.dim))


def load_corpus(path: Path, settings: Settings) -> Corpus:
    started = time.perf_counter()
    articles = read_corpus_articles(path)
    encoder = ArticleEncoder.from_settings(settings)
    cached = cached_count(encoder, articles)
    vectors = encoder.encode_articles(articles, progress=True)
    return Corpus(path, articles, vectors, cached, time.perf_counter() - started)
