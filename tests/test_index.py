"""The vector index (mutable FAISS with tombstones), the store, the generations directory, and
the engine when following fails or a switch interrupts a write (synthetic vectors)."""

import logging
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import (
    WRITE_ATTEMPTS,
    Engine,
    FollowState,
    Generation,
    IndexUnavailable,
    Prepared,
    build_generation,
)
from recommender.storage import store as store_module
from recommender.storage.generations import IndexDir
from recommender.storage.store import SCHEMA_VERSION, Store
from recommender.storage.vectors import VectorIndex, VectorIndexConfig
from recommender.text.entities import Entities


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _articles(n: int) -> list[Article]:
    return [
        Article(
            id=f"id-{i}",
            title=f"Заглавие {i}",
            body="текст",
            section="sport" if i % 2 else "politics",
            source=f"s{i % 3}.bg",
            published=datetime(2026, 7, 1 + i % 28, tzinfo=UTC),
        )
        for i in range(n)
    ]


def _mask(size: int, slots: list[int] | np.ndarray) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[slots] = True
    return mask


def test_flat_search_is_exact_and_honours_filters() -> None:
    v = _vectors(500)
    index = VectorIndex.build(np.arange(500), v, VectorIndexConfig())
    assert index.kind == "flat"
    slots, scores = index.search(v[7], 10)
    expected = np.argsort(-(v @ v[7]))[:10]
    assert slots.tolist() == expected.tolist()
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    allowed = _mask(500, np.arange(0, 500, 5))
    allowed[10] = False
    slots, _ = index.search(v[7], 10, allowed=allowed)
    assert len(slots) == 10 and all(s % 5 == 0 and s != 10 for s in slots)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_removed_slots_never_come_back_and_new_ones_are_found(kind: str) -> None:
    v = _vectors(700, dim=48, seed=2)
    index = VectorIndex.build(np.arange(600), v[:600], VectorIndexConfig(kind=kind))  # type: ignore[arg-type]
    for slot in range(600, 700):
        index.add(slot, v[slot])
    assert index.search(v[650], 1)[0].tolist() == [650]
    removed = list(range(0, 200))
    for slot in removed:
        index.remove(slot)
    assert len(index) == 500
    for q in (5, 50, 150):
        slots, _ = index.search(v[q], 20)
        assert len(slots) == 20 and not set(slots.tolist()) & set(removed)
    if kind == "hnsw":
        assert index.params()["tombstones"] < 0.2 * 700  # rebuilt once tombstones passed 20%


def test_hnsw_above_threshold_keeps_recall_and_filters() -> None:
    v = _vectors(3000, dim=48, seed=1)
    config = VectorIndexConfig(hnsw_threshold=1000, exact_below_allowed=10)
    index = VectorIndex.build(np.arange(3000), v, config)
    assert index.kind == "hnsw"
    hits = 0
    for q in range(0, 3000, 100):
        exact = set(np.argsort(-(v @ v[q]))[:10].tolist())
        slots, _ = index.search(v[q], 10)
        hits += len(exact & set(slots.tolist()))
    assert hits / (30 * 10) >= 0.95
    allowed = _mask(3000, np.arange(0, 3000, 2))
    allowed[4] = False
    slots, _ = index.search(v[4], 10, allowed=allowed)
    assert len(slots) == 10 and all(s % 2 == 0 and s != 4 for s in slots)


def _prepared(n: int) -> list[Prepared]:
    return [
        Prepared(a, v, {"заглав": 1, f"т{i}": 1}, Entities())
        for i, (a, v) in enumerate(zip(_articles(n), _vectors(n), strict=True))
    ]


META = {"model_id": "model-a", "dim": 32}


def test_generation_roundtrip(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    first = build_generation(target, _prepared(40), META, settings, progress=False)
    engine = Engine(target, settings, model_id="model-a")
    assert len(engine) == 40 and engine.article("id-3") == _articles(40)[3]
    assert engine.stored_list("id-3") is not None
    mirror = engine.read_view().mirror
    assert np.allclose(mirror.vectors.vectors[mirror.slot_of["id-9"]], _vectors(40)[9])
    sport = mirror.allowed(section="sport")
    assert sport is not None and sorted(np.flatnonzero(sport).tolist()) == list(range(1, 40, 2))
    engine.close()
    second = build_generation(target, _prepared(10), META, settings, progress=False)
    assert first.name == "gen-000001" and second.name == "gen-000002"
    assert sorted(p.name for p in target.iterdir()) == ["CURRENT", "gen-000002"]


def test_engine_refuses_other_model_old_format_and_missing(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    generation = build_generation(target, _prepared(3), META, settings, progress=False)
    with pytest.raises(IndexUnavailable, match="built with model 'model-a'"):
        Engine(target, settings, model_id="model-b")
    store = Store(generation / Store.FILENAME)
    store.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store.close()
    with pytest.raises(IndexUnavailable, match="newer than this version"):
        Engine(target, settings)
    with pytest.raises(IndexUnavailable, match="no index at"):
        Engine(tmp_path / "missing", settings)
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    with pytest.raises(IndexUnavailable, match="older format"):
        Engine(old, settings)


def test_failed_build_leaves_the_old_generation_current(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    build_generation(target, _prepared(3), META, settings, progress=False)
    broken = _prepared(3)
    broken.append(Prepared(_articles(4)[3], np.ones(16, np.float32), {}, Entities()))
    with pytest.raises(ValueError):
        build_generation(target, broken, META, settings, progress=False)
    engine = Engine(target, settings)
    assert len(engine) == 3
    engine.close()
    assert sorted(p.name for p in target.iterdir()) == ["CURRENT", "gen-000001"]


def test_collect_keeps_a_generation_in_use_and_stale_staging_goes(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    build_generation(target, _prepared(3), META, settings, progress=False)
    reader = Engine(target, settings)
    (target / ".gen-000009.tmp-dead").mkdir()  # what a killed build leaves
    build_generation(target, _prepared(4), META, settings, progress=False)
    assert sorted(p.name for p in target.iterdir()) == ["CURRENT", "gen-000001", "gen-000002"]
    assert reader.follow() and len(reader) == 4
    # the old generation is closed (and removed) only once requests in flight are done
    assert sorted(p.name for p in target.iterdir()) == ["CURRENT", "gen-000001", "gen-000002"]
    reader.close()
    assert sorted(p.name for p in target.iterdir()) == ["CURRENT", "gen-000002"]
    assert IndexDir(target).current().name == "gen-000002"


def test_rewriting_a_list_finds_its_listed_rows_by_index(tmp_path: Path) -> None:
    """Every write re-stores lists; deleting a list's `listed` rows must not scan the table
    (at 100k articles it holds 2M rows)."""
    store = Store.create(tmp_path / Store.FILENAME, {"model_id": "m", "dim": 4})
    try:
        plan = " ".join(
            str(row[-1])
            for row in store.db.execute(f"EXPLAIN QUERY PLAN {store_module.DELETE_LISTED}", ("a",))
        )
    finally:
        store.close()
    assert "USING" in plan and "INDEX" in plan, plan


def _damage(generation: Path) -> None:
    """Random bytes over the pages of the lists table: SQLite's check fails."""
    path = generation / Store.FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'lists'")]
    db.close()
    rng = random.Random(0)
    with path.open("r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * page_size)
            fh.write(rng.randbytes(page_size))


def test_the_follower_backs_off_while_it_cannot_follow_and_logs_each_change_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new current generation that is damaged: the old one is still served, writes are
    refused at once, the follower logs the problem once and waits twice as long after each
    failure up to the cap; once the index is repaired it logs that once and is back to its
    interval."""
    target = tmp_path / "idx"
    settings = Settings(index_dir=target, follow_seconds=0.2)
    first = build_generation(target, _prepared(3), META, settings, progress=False)
    engine = Engine(target, settings)
    try:
        _damage(build_generation(target, _prepared(4), META, settings, progress=False))
        state = FollowState(settings.follow_seconds, cap=1.0)
        delays = []
        with caplog.at_level(logging.INFO, logger="recommender.engine"):
            for _ in range(6):
                state.step(engine.poll)
                delays.append(state.delay)
            assert delays == [0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
            assert engine.generation_path == first and len(engine) == 3
            with pytest.raises(IndexUnavailable, match="is damaged"):
                engine.delete(["id-0"])
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "gen-000002 of index" in errors[0], errors
            caplog.clear()
            IndexDir(target).switch(first)  # the repair: a healthy generation is current
            state.step(engine.poll)
            state.step(engine.poll)
        assert state.delay == settings.follow_seconds and state.problem is None
        assert [r.getMessage()[:28] for r in caplog.records if r.levelno >= logging.INFO] == [
            "switched to generation gen-0",
            "following the index again (i",
        ]
        assert engine.delete(["id-0"])[0].status == "deleted"
    finally:
        engine.close()


def test_a_write_that_a_switch_interrupts_every_time_gives_up_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild switches the generation between every attempt's start and its commit: the
    write is refused after `WRITE_ATTEMPTS` attempts, and nothing of it is written."""
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    build_generation(target, _prepared(3), META, settings, progress=False)
    engine = Engine(target, settings)
    follower = engine._follower  # (internal on purpose: a write's attempts sync through it)
    real_sync = follower.sync
    builds: list[Path] = []

    def sync_then_rebuild() -> Generation:
        gen = real_sync()
        assert len(builds) < WRITE_ATTEMPTS, "the write was attempted again"
        builds.append(build_generation(target, _prepared(3), META, settings, progress=False))
        return gen

    monkeypatch.setattr(follower, "sync", sync_then_rebuild)
    try:
        with pytest.raises(IndexUnavailable, match=f"switched {WRITE_ATTEMPTS} times"):
            engine.delete(["id-1"])
        assert len(builds) == WRITE_ATTEMPTS
        monkeypatch.setattr(follower, "sync", real_sync)
        assert engine.follow() and engine.generation_path == builds[-1]
        assert engine.article("id-1") is not None and engine.read_view().store.head() == 0
    finally:
        engine.close()
