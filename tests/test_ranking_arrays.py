"""The lists over candidate arrays equal the lists of the per-item code they replaced.

`tests/golden/sample_lists.json` was recorded from the per-item ranking (commit 308954c) on the
sample corpus: every article's stored list (the default query at `max_k`) and, for a few
articles, lists with non-default parameters (MMR, a minimum score that reaches the fallback
ladder, dense only, raw relevance, a filter). Ids and order must match exactly, scores to 1e-6.

After an intended change of the ranking, rewrite it with
`RECOMMENDER_WRITE_GOLDEN=1 python -m pytest tests/test_ranking_arrays.py` (the test then skips).
The arrays the ranking keeps per slot follow the mirror's updates (a test below).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.articles import Article
from recommender.engine import Engine
from recommender.ranking.config import RankingConfig
from recommender.ranking.related import Related, RelatedItem, RelatedQuery
from recommender.ranking.signals import freshness_penalty
from recommender.storage.mirror import Mirror
from recommender.storage.store import Store, StoredArticle
from recommender.text.entities import Entities

DAY0 = datetime(2024, 5, 10, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden" / "sample_lists.json"
VARIANT_ARTICLES = 12
VARIANTS = {
    "diversity": RelatedQuery(k=10, diversity=0.3),
    "min_score": RelatedQuery(k=10, min_score=6.0),
    "dense": RelatedQuery(k=10, method="dense"),
    "ranked": RelatedQuery(k=10, stage="ranked"),
    "section": RelatedQuery(k=10, section="politics"),
}


def _record(items: list[RelatedItem]) -> list[list[object]]:
    return [[it.article.id, round(it.score, 6), it.reason] for it in items]


def _lists(engine: Engine) -> dict[str, Any]:
    ids = sorted(engine.ids())
    default = RelatedQuery(k=engine.settings.max_k)
    return {
        "default": {a: _record(engine.related(a, default)) for a in ids},
        "variants": {
            name: {a: _record(engine.related(a, q)) for a in ids[:VARIANT_ARTICLES]}
            for name, q in VARIANTS.items()
        },
    }


SCORE_TOLERANCE = 1e-5


def _assert_same(got: list[list[object]], want: list[list[object]], where: str) -> None:
    assert [g[0] for g in got] == [w[0] for w in want], where
    assert [g[2] for g in got] == [w[2] for w in want], where
    # the ids, their order and reasons are exact; a score is float32 arithmetic (FAISS's inner
    # products, the fusion's weighted sums) whose last bits differ between CPUs (AVX2 and AVX-512
    # kernels sum in other orders), recorded to 6 decimals: on an AVX2 machine 2e-6 off the
    # scores recorded on an AVX-512 one
    for g, w in zip(got, want, strict=True):
        assert g[1] == pytest.approx(w[1], abs=SCORE_TOLERANCE), (where, g[0])


@pytest.fixture(scope="module")
def hand_engine(sample_index: Path, settings_factory) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """The sample index ranked by the hand fusion (the golden lists were recorded with it)."""
    settings = settings_factory(index_dir=sample_index, ranking=RankingConfig(model=None))
    engine = Engine(sample_index, settings)
    yield engine
    engine.close()


def test_sample_lists_equal_the_recorded_lists(hand_engine: Engine) -> None:
    lists = _lists(hand_engine)
    if os.environ.get("RECOMMENDER_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(lists, ensure_ascii=False, separators=(",", ":")) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(lists["default"]) == sorted(golden["default"])
    for article, want in golden["default"].items():
        _assert_same(lists["default"][article], want, f"default {article}")
    for name, by_article in golden["variants"].items():
        for article, want in by_article.items():
            _assert_same(lists["variants"][name][article], want, f"{name} {article}")


def _row(slot: int, article_id: str, days: float, vector: tuple[float, ...]) -> StoredArticle:
    story = Article(
        id=article_id,
        title=f"Заглавие {article_id}",
        body="Текст.",
        published=DAY0 + timedelta(days=days),
    )
    v = np.array(vector, dtype=np.float32)
    return StoredArticle(slot, story, v / np.linalg.norm(v), {article_id: 1}, Entities(), "")


def test_a_changed_date_at_the_same_slot_changes_the_freshness(tmp_path: Path) -> None:
    """The arrays the ranking keeps per slot follow a metadata update in place."""
    rows = [
        _row(0, "q", 0, (1.0, 0.0, 0.0)),
        _row(1, "near", 1, (0.8, 0.6, 0.0)),
        _row(2, "far", 1, (0.6, 0.0, 0.8)),
    ]
    store = Store.create(tmp_path / Store.FILENAME, {"dim": 3})
    with store.transaction() as tx:
        for r in rows:
            tx.put_article(r.teaser, tx.take_slot(), r.vector, r.terms, r.entities, 0)
    mirror = Mirror.load(store, 3)
    related = Related(mirror, RankingConfig())
    q = RelatedQuery(k=2, stage="ranked")
    before = {it.article.id: it.parts["freshness"] for it in related.for_id("q", q)}
    assert before == {"near": 0.0, "far": 0.0}
    mirror.add(_row(1, "near", 40, (0.8, 0.6, 0.0)))
    after = {it.article.id: it.parts["freshness"] for it in related.for_id("q", q)}
    cfg = RankingConfig()
    assert after["near"] == pytest.approx(-cfg.freshness_weight * freshness_penalty(40.0, cfg))
    assert after["far"] == 0.0
    store.close()
