"""Index directories for the latency and HTTP benchmarks, built with the project's own code.

Store rows are placeholder articles (a title and a 200-character lead, about the size the API
returns per item), so no corpus text is written anywhere; the vectors are real or derived. The
directories are dense-only (no lexical index or entities: placeholder text would make those
signals meaningless), so they measure what grows with the collection: vector search, the store
look-up and the final ranking stage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from recommender.articles import Article
from recommender.storage.collection import Collection, Manifest
from recommender.storage.vectors import IndexConfig

LEAD = ("Кратко резюме на статията, каквото сайтът показва под заглавието. " * 4)[:200]
SECTIONS = ("България", "Свят", "Икономика", "Спорт", "Култура")
SOURCES = ("site-a.bg", "site-b.bg", "site-c.bg")
START = datetime(2018, 1, 1, tzinfo=UTC)


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


def write_collection(
    directory: Path, vectors: np.ndarray, model_id: str, config: IndexConfig
) -> Manifest:
    """A complete index directory over `vectors` (row i = article `article_id(i)`)."""
    return Collection.write(
        directory,
        placeholder_articles(len(vectors)),
        vectors,
        model_id=model_id,
        encoder_info={"backend": "benchmark", "strategy": "head", "vectors": "real+derived"},
        config=config,
        text_signals=False,
    )
