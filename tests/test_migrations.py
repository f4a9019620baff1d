"""The store's numbered migrations: a store written before them opens without a rebuild, a store
of a newer release is refused.

`fixtures/store-format3.sqlite.gz` is a store written by the code before migrations (format
version 3, commit 308954c): `recommender index build` of the first five articles of the bundled
sample corpus, then `recommender index delete a1005` (so its log holds a change).
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import orjson
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import Engine, IndexUnavailable
from recommender.ranking.related import RelatedQuery
from recommender.storage.store import SCHEMA_VERSION, Store, StoreError

FIXTURE = Path(__file__).parent / "fixtures" / "store-format3.sqlite.gz"
STORY = ["a1001", "a1002", "a1003", "a1004"]


def _old_index(root: Path) -> Path:
    """An index directory whose only generation is the fixture's store."""
    generation = root / "idx" / "gen-000001"
    generation.mkdir(parents=True)
    (generation / Store.FILENAME).write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    (root / "idx" / "CURRENT").write_text("gen-000001\n")
    return root / "idx"


def _schema(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
    finally:
        db.close()


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_store_written_before_migrations_is_served_and_written_after_the_upgrade(
    tmp_path: Path, sample_articles: list[Article]
) -> None:
    index = _old_index(tmp_path)
    store_path = index / "gen-000001" / Store.FILENAME
    assert _user_version(store_path) == 0
    engine = Engine(index, Settings(index_dir=index))
    try:
        assert sorted(engine.ids()) == STORY and engine.seq == 1
        by_id = {a.id: a for a in sample_articles}
        for article_id in STORY:
            assert engine.article(article_id) == by_id[article_id]
            listed = [i["id"] for i in orjson.loads(engine.stored_list(article_id) or b"[]")]
            assert listed and set(listed) <= set(STORY) - {article_id}, article_id
        assert engine.article("a1005") is None and engine.stored_list("a1005") is None
        computed = engine.related("a1001", RelatedQuery(k=3))
        assert {i.article.id for i in computed} <= set(STORY) - {"a1001"}
        assert "format_version" not in engine.meta
        assert engine.meta["dim"] == 384 and engine.meta["model_id"]
        (result,) = engine.delete(["a1004"])
        assert result.status == "deleted" and result.seq == 2
        for article_id in STORY[:3]:
            listed = [i["id"] for i in orjson.loads(engine.stored_list(article_id) or b"[]")]
            assert "a1004" not in listed, article_id
    finally:
        engine.close()
    assert _user_version(store_path) == SCHEMA_VERSION


def test_a_migrated_store_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    """Migration 1 is the pre-migration schema verbatim: adopting an old store and creating a
    new one from the migrations end at the same tables and indexes."""
    old = _old_index(tmp_path) / "gen-000001" / Store.FILENAME
    Store(old).close()
    new = tmp_path / Store.FILENAME
    Store.create(new, {"model_id": "m", "dim": 4}).close()
    assert _schema(old) == _schema(new)
    assert _user_version(old) == _user_version(new) == SCHEMA_VERSION


def test_a_store_of_a_newer_release_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / Store.FILENAME
    Store.create(path, {"model_id": "m", "dim": 4}).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(
        StoreError,
        match=rf"schema version {SCHEMA_VERSION + 1}, newer than this version of the "
        rf"recommender knows \({SCHEMA_VERSION}\): it was written by a newer release",
    ):
        Store(path)
    assert _user_version(path) == SCHEMA_VERSION + 1


def test_a_store_of_an_older_format_or_no_store_is_refused(tmp_path: Path) -> None:
    index = _old_index(tmp_path)
    path = index / "gen-000001" / Store.FILENAME
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexUnavailable, match=r"format version 2, from before 3.*Rebuild"):
        Engine(index, Settings(index_dir=index))
    assert _user_version(path) == 0  # refused in its transaction: nothing changed
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreError, match="is not a store"):
        Store(empty)
