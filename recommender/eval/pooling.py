"""Pooled judging, the TREC way: the pairs in the top `depth` of any run that the judgements do
not grade, blind (no run, rank or score shown) and shuffled, with both articles' date, source,
title and lead, and an empty `grade` column for a judge to fill in a spreadsheet.

The CSV is UTF-8 with a byte-order mark (so spreadsheets show Cyrillic intact) and has the
qrels' three columns `query_id`, `doc_id`, `grade`: once filled (0 not related, 1 related,
2 same event, 3 same story; rows left blank are skipped) it is read back as a qrels supplement
by `load_qrels(qrels, pool)`.
"""

from __future__ import annotations

import csv
import random
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from recommender.articles import Article
from recommender.eval.files import Qrels, Record
from recommender.eval.scoring import RunLike, ranked_ids
from recommender.inputs import read_articles

LEAD_CHARS = 300
POOL_COLUMNS = [
    "pair",
    "query_id",
    "doc_id",
    "grade",
    "query_date",
    "query_source",
    "query_title",
    "query_lead",
    "doc_date",
    "doc_source",
    "doc_title",
    "doc_lead",
]


def load_articles(path: Path) -> dict[str, Article]:
    """The valid articles of a JSONL or CSV input by id (a later row with an id wins)."""
    return {a.id: a for a in read_articles(path) if isinstance(a, Article)}


def lead(article: Article) -> str:
    """The article's lead, or the start of its body when it has none."""
    text = article.lead or article.body
    return textwrap.shorten(text, LEAD_CHARS, placeholder=" …") if text else ""


def _describe(prefix: str, article: Article) -> Record:
    return {
        f"{prefix}_date": article.published.date().isoformat() if article.published else "",
        f"{prefix}_source": article.source or "",
        f"{prefix}_title": article.title,
        f"{prefix}_lead": lead(article),
    }


def pool(
    runs: Mapping[str, RunLike],
    qrels: Qrels,
    articles: Mapping[str, Article] | Path | str,
    depth: int = 5,
    seed: int = 0,
    queries: Sequence[str] | None = None,
) -> list[Record]:
    """The unjudged (query, article) pairs in the top `depth` of any run, in a shuffled order
    fixed by `seed`, one record per pair with both articles described and an empty grade."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    by_id = articles if isinstance(articles, Mapping) else load_articles(Path(articles))
    wanted = set(queries) if queries is not None else None
    pairs: set[tuple[str, str]] = set()
    for run in runs.values():
        for query_id, docs in ranked_ids(run).items():
            if wanted is not None and query_id not in wanted:
                continue
            top = [d for d in docs if d != query_id][:depth]
            pairs.update((query_id, d) for d in top if d not in qrels.get(query_id, {}))
    order = sorted(pairs)
    random.Random(seed).shuffle(order)
    records: list[Record] = []
    for n, (query_id, doc_id) in enumerate(order, start=1):
        missing = [i for i in (query_id, doc_id) if i not in by_id]
        if missing:
            raise ValueError(f"article(s) {', '.join(missing)} of a run are not in the articles")
        records.append(
            {"pair": n, "query_id": query_id, "doc_id": doc_id, "grade": ""}
            | _describe("query", by_id[query_id])
            | _describe("doc", by_id[doc_id])
        )
    return records


def write_pool(path: Path, records: Sequence[Mapping[str, object]]) -> None:
    """The pool as a spreadsheet-ready CSV (UTF-8 with BOM, comma-separated)."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=POOL_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
