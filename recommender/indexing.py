"""Batch indexing: input file -> validated articles -> vectors -> a new generation, or
upserts into the served one.

A bad row never stops the run and is never dropped silently: it is reported with its line and
reason and written to the rejects file. A repeated id keeps the later row, with a warning.
Re-running after an interruption is cheap: vectors already encoded come from the cache.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine, WriteResult, build_generation, prepare
from recommender.fsutil import write_atomic
from recommender.inputs import Reject, read_rows
from recommender.storage.generations import IndexDir, IndexMissing, LogMark
from recommender.storage.lexical import LexicalConfig
from recommender.storage.store import Store
from recommender.storage.vectors import VectorIndexConfig

UPDATE_BATCH = 256


@dataclass
class Duplicate:
    article_id: str
    first_line: int
    kept_line: int


class WouldUnpublish(ValueError):
    """A build from a file that lacks articles the index serves (published through the API or
    `index update` since the file was exported): it would unpublish them."""

    def __init__(self, index_dir: Path, generation: str, dropped: list[str]) -> None:
        shown = ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        super().__init__(
            f"{len(dropped)} articles served by {index_dir} ({generation}) are not in the input "
            f"({shown}): the build would unpublish them. Add them to the input, pass --replace "
            "to drop them, or run `recommender index rebuild` to reindex what the index holds"
        )
        self.dropped = dropped


@dataclass
class BuildReport:
    input: Path
    index_dir: Path
    rows: int = 0
    indexed: int = 0
    rejects: list[Reject] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    generation: Path | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def articles_per_second(self) -> float:
        return self.indexed / self.total_seconds if self.total_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "index": str(self.index_dir),
            "rows": self.rows,
            "indexed": self.indexed,
            "rejected": len(self.rejects),
            "duplicates": len(self.duplicates),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "total_seconds": round(self.total_seconds, 2),
            "articles_per_second": round(self.articles_per_second, 2),
            "dropped": self.dropped,
            **({"statuses": self.statuses} if self.statuses else {}),
        }


def read_input(path: Path, report: BuildReport) -> list[Article]:
    """Valid articles of `path` in first-seen order; later duplicates replace earlier ones."""
    by_id: dict[str, tuple[int, Article]] = {}
    for line, item in read_rows(path):
        report.rows += 1
        if isinstance(item, Reject):
            report.rejects.append(item)
            continue
        if item.id in by_id:
            report.duplicates.append(Duplicate(item.id, by_id[item.id][0], line))
        by_id[item.id] = (line, item)
    return [article for _, article in by_id.values()]


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    lines = (
        orjson.dumps({"source": r.source, "line": r.line, "reason": r.reason, "raw": r.raw})
        for r in rejects
    )
    write_atomic(path, b"".join(line + b"\n" for line in lines))


def index_meta(encoder: ArticleEncoder, lexical: LexicalConfig) -> dict[str, Any]:
    """What a generation records about how it was made."""
    return {
        "model_id": encoder.model_id,
        "dim": encoder.dim,
        "encoder": {
            "backend": encoder.backend.name,
            "path": encoder.backend.path,
            "strategy": encoder.strategy,
            "window_tokens": encoder.window_tokens,
            "budget": encoder.budget,
            "budget_why": encoder.budget_why,
        },
        "lexical": lexical.model_dump(),
    }


def build_index(
    input_path: Path,
    index_dir: Path,
    encoder: ArticleEncoder,
    settings: Settings,
    config: VectorIndexConfig | None = None,
    progress: bool = True,
    encode: Callable[[list[Article]], np.ndarray] | None = None,
    since: LogMark | None = None,
    replace: bool = False,
) -> BuildReport:
    """A new generation of `index_dir` holding exactly the valid articles of `input_path`
    (plus the writes the served generation takes after `since`), made current when complete.
    `since` defaults to the log's position when this starts; a caller that loaded a model
    first takes it before (`IndexDir.mark`), or the writes acknowledged meanwhile are lost.
    `encode` replaces `encoder.encode_articles` (the Ray pipeline passes its own); it must give
    the vectors of the same model, backend and strategy as `encoder`, rows in input order.
    Articles the index serves at `since` that the input lacks would be unpublished: without
    `replace` that is refused (`WouldUnpublish`), before anything is encoded."""
    report = BuildReport(input=input_path, index_dir=index_dir)
    if since is None:
        since = IndexDir(index_dir).mark()
    t0 = time.perf_counter()
    articles = read_input(input_path, report)
    t1 = time.perf_counter()
    if not articles:
        raise ValueError(f"{input_path}: no valid articles ({len(report.rejects)} rejected)")
    if since is not None:
        dropped = served_ids(index_dir / since.generation) - {a.id for a in articles}
        if dropped and not replace:
            raise WouldUnpublish(index_dir, since.generation, sorted(dropped))
        report.dropped = len(dropped)
    if encode is None:
        vectors = encoder.encode_articles(articles, progress=progress)
    else:
        vectors = encode(articles)
    t2 = time.perf_counter()
    report.generation = _new_generation(
        index_dir, articles, vectors, encoder, settings, config, progress, since
    )
    t3 = time.perf_counter()
    report.indexed = len(articles)
    report.seconds = {"read": t1 - t0, "encode": t2 - t1, "index": t3 - t2}
    return report


def served_ids(generation: Path) -> set[str]:
    """The ids a generation serves."""
    store = Store(generation / Store.FILENAME)
    try:
        return set(store.ids())
    finally:
        store.close()


def rebuild_index(
    index_dir: Path,
    encoder: ArticleEncoder,
    settings: Settings,
    config: VectorIndexConfig | None = None,
    progress: bool = True,
    before_switch: Callable[[], None] | None = None,
) -> Path:
    """Reindex what the index serves, from its own store: every article encoded again with
    `encoder` (its cached vectors reused when the model is the same), term counts and entities
    computed again, every list ranked again, slots renumbered without tombstones; the writes
    the served generation takes meanwhile are carried over. Nothing the index serves is lost.
    (Elasticsearch's `_reindex` behind an alias, with `CURRENT` as the alias.)"""
    index = IndexDir(index_dir)
    current = index.current()
    since = index.mark()
    if since is None:
        raise IndexMissing(f"index {index_dir}: the store of {current.name} cannot be read")
    store = Store(index_dir / since.generation / Store.FILENAME)
    try:
        articles = [article for article, _ in store.full_articles()]
    finally:
        store.close()
    vectors = encoder.encode_articles(articles, progress=progress)
    return _new_generation(
        index_dir, articles, vectors, encoder, settings, config, progress, since, before_switch
    )


def _new_generation(
    index_dir: Path,
    articles: list[Article],
    vectors: np.ndarray,
    encoder: ArticleEncoder,
    settings: Settings,
    config: VectorIndexConfig | None,
    progress: bool,
    since: LogMark | None,
    before_switch: Callable[[], None] | None = None,
) -> Path:
    """A new generation of these articles and their vectors (by `encoder`), with the default
    lexical settings; made current (see `build_generation`)."""
    lexical = LexicalConfig()
    return build_generation(
        index_dir,
        prepare(articles, vectors, lexical),
        index_meta(encoder, lexical),
        settings,
        config,
        progress=progress,
        before_switch=before_switch,
        since=since,
        encoder=encoder,
    )


def update_index(input_path: Path, engine: Engine, progress: bool = True) -> BuildReport:
    """Upsert the valid articles of `input_path` into the served index, in transactions of
    `UPDATE_BATCH` articles (an interrupted run keeps what it committed; re-run to resume)."""
    report = BuildReport(input=input_path, index_dir=engine.directory.path)
    t0 = time.perf_counter()
    articles = read_input(input_path, report)
    t1 = time.perf_counter()
    results: list[WriteResult] = []
    with tqdm(total=len(articles), unit="art", desc="updating", disable=not progress) as bar:
        for start in range(0, len(articles), UPDATE_BATCH):
            batch = articles[start : start + UPDATE_BATCH]
            results += engine.upsert(batch)
            bar.update(len(batch))
    t2 = time.perf_counter()
    report.indexed = sum(r.status != "unchanged" for r in results)
    report.statuses = dict(Counter(r.status for r in results))
    report.seconds = {"read": t1 - t0, "write": t2 - t1}
    return report
