from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from recommender.articles import Article
from recommender.storage.collection import FORMAT_VERSION, Collection, IndexUnavailable
from recommender.storage.vectors import IndexConfig, VectorIndex


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


def test_flat_search_is_exact_and_honours_filters() -> None:
    v = _vectors(500)
    index = VectorIndex.build(v, IndexConfig())
    assert index.kind == "flat"
    rows, scores = index.search(v[7], 10)
    expected = np.argsort(-(v @ v[7]))[:10]
    assert rows.tolist() == expected.tolist()
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    rows, _ = index.search(v[7], 10, exclude={7, int(expected[1])})
    assert 7 not in rows and int(expected[1]) not in rows and len(rows) == 10
    allowed = np.arange(0, 500, 5)
    rows, _ = index.search(v[7], 10, exclude={10}, allowed=allowed)
    assert len(rows) == 10 and all(r % 5 == 0 and r != 10 for r in rows)


def test_hnsw_above_threshold_keeps_recall_and_filters() -> None:
    v = _vectors(3000, dim=48, seed=1)
    config = IndexConfig(hnsw_threshold=1000, exact_below_allowed=10)
    index = VectorIndex.build(v, config)
    assert index.kind == "hnsw"
    hits = 0
    for q in range(0, 3000, 100):
        exact = set(np.argsort(-(v @ v[q]))[:10].tolist())
        rows, _ = index.search(v[q], 10)
        hits += len(exact & set(rows.tolist()))
    assert hits / (30 * 10) >= 0.95
    allowed = np.arange(0, 3000, 2)
    rows, _ = index.search(v[4], 10, exclude={4}, allowed=allowed)
    assert len(rows) == 10 and all(r % 2 == 0 and r != 4 for r in rows)


def test_collection_roundtrip_and_manifest(tmp_path: Path) -> None:
    arts, v = _articles(40), _vectors(40)
    target = tmp_path / "idx"
    manifest = Collection.write(target, arts, v, "model-a", {"backend": "x"}, IndexConfig())
    assert manifest.count == 40 and manifest.dim == 32 and manifest.index["kind"] == "flat"
    c = Collection.load(target, model_id="model-a")
    assert len(c) == 40 and c.store.ids[3] == "id-3"
    assert c.store.get("id-3") == arts[3]
    assert c.store.get_rows([5, 2]) == [arts[5], arts[2]]
    assert np.allclose(c.index.vectors[c.store.row_of("id-9")], v[9])
    sport = c.store.rows_matching(section="sport")
    assert sorted(sport.tolist()) == list(range(1, 40, 2))
    since = c.store.rows_matching(since=datetime(2026, 7, 25, tzinfo=UTC))
    assert all(arts[r].published.day >= 25 for r in since)  # type: ignore[union-attr]
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_collection_refuses_other_model_and_format(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    Collection.write(target, _articles(3), _vectors(3), "model-a", {}, IndexConfig())
    with pytest.raises(IndexUnavailable, match="built with model 'model-a'"):
        Collection.load(target, model_id="model-b")
    manifest = orjson.loads((target / "manifest.json").read_bytes())
    manifest["format_version"] = FORMAT_VERSION - 1
    (target / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(IndexUnavailable, match="format version"):
        Collection.load(target)
    with pytest.raises(IndexUnavailable, match="no index at"):
        Collection.load(tmp_path / "missing")


def test_failed_build_leaves_the_old_index_intact(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    Collection.write(target, _articles(3), _vectors(3), "model-a", {}, IndexConfig())
    broken = _articles(3)
    broken.append(broken[0])
    with pytest.raises(Exception, match="UNIQUE"):
        Collection.write(target, broken, _vectors(4), "model-a", {}, IndexConfig())
    assert len(Collection.load(target)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]
