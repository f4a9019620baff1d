"""The vector index (mutable FAISS with tombstones), the store and the generations directory."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import Engine, IndexUnavailable, Prepared, build_generation
from recommender.storage import store as store_module
from recommender.storage.generations import IndexDir
from recommender.storage.store import SCHEMA_VERSION, Store
from recommender.storage.vectors import IndexConfig, VectorIndex
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
    index = VectorIndex.build(np.arange(500), v, IndexConfig())
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
    index = VectorIndex.build(np.arange(600), v[:600], IndexConfig(kind=kind))  # type: ignore[arg-type]
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
    config = IndexConfig(hnsw_threshold=1000, exact_below_allowed=10)
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
    mirror = engine.gen.mirror
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
