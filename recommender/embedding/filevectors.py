"""A file of articles to a NumPy file of their vectors, for data scientists and benchmarks.

`VECTORS.npy` holds one float32 row per valid input row, in input order; `VECTORS.ids.json`
beside it lists the article ids of those rows. Both are written aside and renamed into place.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from recommender.articles import Article
from recommender.embedding.encoder import ArticleEncoder, article_text
from recommender.fsutil import write_atomic
from recommender.inputs import Reject, read_rows


@dataclass
class EncodeReport:
    rows: int = 0
    encoded: int = 0
    cached: int = 0
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def articles_per_second(self) -> float:
        """Texts the model encoded per second (cached ones excluded; model load excluded)."""
        return (self.encoded - self.cached) / self.seconds if self.seconds else 0.0


def ids_path(vectors_path: Path) -> Path:
    return vectors_path.with_name(vectors_path.name.removesuffix(".npy") + ".ids.json")


def encode_file(
    input_path: Path, out: Path, encoder: ArticleEncoder, progress: bool = False
) -> EncodeReport:
    report = EncodeReport()
    articles: list[Article] = []
    for _, item in read_rows(input_path):
        report.rows += 1
        if isinstance(item, Reject):
            report.rejects.append(item)
        else:
            articles.append(item)
    if not articles:
        raise ValueError(f"{input_path}: no valid articles ({len(report.rejects)} rejected)")
    if encoder.cache is not None:
        hashes = [encoder.text_hash(article_text(a)) for a in articles]
        found = encoder.cache.get_many(encoder.cache_key, hashes, encoder.dim)
        report.cached = sum(h in found for h in hashes)
    started = time.perf_counter()
    vectors = encoder.encode_articles(articles, progress=progress)
    report.seconds = time.perf_counter() - started
    report.encoded = len(articles)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    write_atomic(out, buffer.getvalue())
    write_atomic(ids_path(out), orjson.dumps([a.id for a in articles]))
    return report
