"""An index directory: article store, vectors, FAISS index and manifest, built and loaded as one.

Layout of `index/<name>/`:
    manifest.json     model id, dimension, count, index parameters, created time, format version
    articles.sqlite   the article store (rows = FAISS ids)
    vectors.npy       the normalized vectors, row order
    vectors.faiss     the FAISS index
    lexical/          the TF-IDF / BM25 index (`recommender.storage.lexical`), row order
    entities.json     document frequencies of named entities (per-article entities are in the store)
A build is written to a staging directory beside the target and renamed into place only when
complete; loading refuses another format version or another model with a clear message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel

from recommender.articles import Article
from recommender.storage.fsutil import replace_dir, staging_dir, write_atomic
from recommender.storage.lexical import LexicalIndex
from recommender.storage.store import ArticleStore
from recommender.storage.vectors import IndexConfig, VectorIndex
from recommender.text.entities import EntityStats, article_entities

FORMAT_VERSION = 2
MANIFEST = "manifest.json"


class IndexUnavailable(RuntimeError):
    """An index directory that cannot be used (missing, old format, other model)."""


ENTITIES = "entities.json"
LEXICAL = "lexical"


class Manifest(BaseModel):
    format_version: int
    model_id: str
    dim: int
    count: int
    index: dict[str, Any]
    encoder: dict[str, Any]
    signals: list[str]
    created: datetime
    build_seconds: float


class Collection:
    """A loaded index directory: look articles up by id, find nearest neighbours by vector."""

    def __init__(
        self,
        directory: Path,
        manifest: Manifest,
        store: ArticleStore,
        index: VectorIndex,
        lexical: LexicalIndex | None = None,
        entity_stats: EntityStats | None = None,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.store = store
        self.index = index
        self.lexical = lexical
        self.entity_stats = entity_stats

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def __len__(self) -> int:
        return len(self.store)

    @staticmethod
    def read_manifest(directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise IndexUnavailable(
                f"no index at {directory}: run `recommender index build --input FILE "
                f"--index {directory}` first"
            )
        data = orjson.loads(path.read_bytes())
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexUnavailable(
                f"index {directory} has format version {version}; this version reads "
                f"{FORMAT_VERSION}. Rebuild it with `recommender index build`"
            )
        return Manifest.model_validate(data)

    @classmethod
    def load(
        cls, directory: Path, config: IndexConfig | None = None, model_id: str | None = None
    ) -> Collection:
        """Open an index; with `model_id`, refuse an index whose vectors come from another model."""
        manifest = cls.read_manifest(directory)
        if model_id is not None and manifest.model_id != model_id:
            raise IndexUnavailable(
                f"index {directory} was built with model '{manifest.model_id}', but the "
                f"configured model is '{model_id}'; rebuild the index or change the model"
            )
        store = ArticleStore(directory / ArticleStore.FILENAME)
        index = VectorIndex.load(directory, config or IndexConfig())
        lexical = entity_stats = None
        if "lexical" in manifest.signals:
            lexical = LexicalIndex.load(directory / LEXICAL)
        if "entities" in manifest.signals:
            entity_stats = EntityStats.from_dict(orjson.loads((directory / ENTITIES).read_bytes()))
        sizes = {len(store), len(index), *([len(lexical)] if lexical else [])}
        if sizes != {manifest.count}:
            raise IndexUnavailable(
                f"index {directory} is inconsistent: manifest says {manifest.count} articles, "
                f"store holds {len(store)}, vectors {len(index)}"
            )
        return cls(directory, manifest, store, index, lexical, entity_stats)

    @staticmethod
    def write(
        directory: Path,
        articles: Sequence[Article],
        vectors: np.ndarray,
        model_id: str,
        encoder_info: dict[str, Any],
        config: IndexConfig,
        text_signals: bool = True,
    ) -> Manifest:
        """Write a complete index directory aside, then move it into place.

        With `text_signals` the lexical index and named entities are built too (the hybrid
        ranking needs them); without, the index serves dense ranking only.
        """
        if len(articles) != len(vectors):
            raise ValueError(f"{len(articles)} articles but {len(vectors)} vectors")
        started = time.perf_counter()
        signals = ["dense"]
        with staging_dir(directory) as tmp:
            entities = None
            if text_signals:
                entities = [article_entities(a) for a in articles]
                write_atomic(tmp / ENTITIES, orjson.dumps(EntityStats.fit(entities).to_dict()))
                LexicalIndex.build(articles).save(tmp / LEXICAL)
                signals += ["lexical", "entities"]
            ArticleStore.write(tmp / ArticleStore.FILENAME, articles, model_id, entities)
            index = VectorIndex.build(vectors, config)
            index.save(tmp)
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                model_id=model_id,
                dim=int(vectors.shape[1]),
                count=len(articles),
                index=index.params(),
                encoder=encoder_info,
                signals=signals,
                created=datetime.now(UTC),
                build_seconds=round(time.perf_counter() - started, 3),
            )
            write_atomic(
                tmp / MANIFEST,
                orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2),
            )
            replace_dir(tmp, directory)
        return manifest

    def close(self) -> None:
        self.store.close()
