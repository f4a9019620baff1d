"""Index directories for the in-process latency benchmark, built with the project's own code.

A generation of placeholder articles (a title and a 200-character lead, about the size the API
returns per item), so no corpus text is written anywhere; the vectors are real or derived. The
articles carry no terms or entities (placeholder text would make those signals meaningless), so
the computed path measures what grows with the collection: vector search and the final stage.

Every article's stored list is written by `build_generation(..., fill_lists=...)` from one
batched FAISS search (dense top `max_k`, records shaped like `RelatedItem.record()`) instead of
the engine's per-article ranking, so a 100k index is built in seconds. The lists then have the
size and shape of real ones, which is what a lookup's cost depends on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import orjson

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import Prepared, build_generation
from recommender.ranking.related import RelatedItem
from recommender.storage.lexical import LexicalConfig
from recommender.storage.store import Store
from recommender.storage.vectors import VectorIndexConfig
from recommender.text.entities import Entities

LEAD = ("Кратко резюме на статията, каквото сайтът показва под заглавието. " * 4)[:200]
SECTIONS = ("България", "Свят", "Икономика", "Спорт", "Култура")
SOURCES = ("site-a.bg", "site-b.bg", "site-c.bg")
START = datetime(2018, 1, 1, tzinfo=UTC)
EXACT_BELOW = 20_000
"""Lists of smaller fixtures come from exact search; larger ones from IVF (nprobe 16)."""
REASON = "similar topic"


def article_id(row: int) -> str:
    return f"b{row:07d}"


def placeholder_articles(count: int) -> list[Article]:
    return [
        Article(
            id=article_id(row),
            title=f"Статия номер {row}",
            lead=LEAD,
            published=START + timedelta(minutes=row),
            url=f"https://example.bg/{row}",
            section=SECTIONS[row % len(SECTIONS)],
            source=SOURCES[row % len(SOURCES)],
        )
        for row in range(count)
    ]


@contextmanager
def faiss_threads(threads: int | None = None) -> Iterator[None]:
    """FAISS with `threads` OpenMP threads (default: one per core) inside the block. An open
    `Engine` sets one thread for the whole process; batch work (builds, batched searches) is
    done with all cores, as an offline build would."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def nearest(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` other rows of every row (scores, rows), from one batched search."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    k = min(k + 1, n)
    with faiss_threads():
        if n < EXACT_BELOW:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            nlist = int(math.sqrt(n))
            quantizer: Any = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
            ivf.train(x[np.sort(sample)])
            ivf.nprobe = 16
            index = ivf
            index.own_fields = True
            quantizer.this.disown()
        index.add(x)
        scores, rows = index.search(x, k)
    return scores, rows


def dense_lists(
    articles: list[Article], vectors: np.ndarray, max_k: int
) -> Callable[[Store], None]:
    """A `fill_lists` for `build_generation`: each article's dense top `max_k` as its list."""

    def fill(store: Store) -> None:
        scores, rows = nearest(vectors, max_k)
        with store.transaction() as tx:
            for row, article in enumerate(articles):
                keep = (rows[row] >= 0) & (rows[row] != row)
                items = [
                    RelatedItem(articles[int(r)], float(s), REASON, {"dense": float(s)})
                    for r, s in zip(rows[row][keep][:max_k], scores[row][keep][:max_k], strict=True)
                ]
                tx.put_list(
                    article.id,
                    orjson.dumps([i.record() for i in items]),
                    [i.article.id for i in items],
                    0,
                )

    return fill


def write_index(
    directory: Path,
    vectors: np.ndarray,
    model_id: str,
    config: VectorIndexConfig,
    settings: Settings,
) -> Path:
    """A complete index directory over `vectors` (slot i = article `article_id(i)`); returns
    its generation."""
    articles = placeholder_articles(len(vectors))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    items = [Prepared(a, v, {}, Entities()) for a, v in zip(articles, vectors, strict=True)]
    meta = {
        "model_id": model_id,
        "dim": int(vectors.shape[1]),
        "encoder": {"backend": "benchmark", "strategy": "head", "vectors": "real+derived"},
        "lexical": LexicalConfig().model_dump(),
    }
    return build_generation(
        directory,
        items,
        meta,
        settings,
        config,
        progress=False,
        fill_lists=dense_lists(articles, vectors, settings.max_k),
    )
