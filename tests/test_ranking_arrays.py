"""The lists over candidate arrays equal the lists of the per-item code they replaced.

`tests/golden/sample_lists.json` was recorded from the per-item ranking (commit 308954c) on the
sample corpus: every article's stored list (the default query at `max_k`) and, for a few
articles, lists with non-default parameters (MMR, a minimum score that reaches the fallback
ladder, dense only, raw relevance, a filter). Ids and order must match exactly, scores to 1e-6.

After an intended change of the ranking, rewrite it with
`RECOMMENDER_WRITE_GOLDEN=1 python -m pytest tests/test_ranking_arrays.py` (the test then skips).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recommender.engine import Engine
from recommender.ranking.related import RelatedItem, RelatedQuery

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


def _lists(engine: Engine) -> dict[str, object]:
    ids = sorted(engine.gen.mirror.slot_of)
    default = RelatedQuery(k=engine.settings.max_k)
    return {
        "default": {a: _record(engine.related(a, default)) for a in ids},
        "variants": {
            name: {a: _record(engine.related(a, q)) for a in ids[:VARIANT_ARTICLES]}
            for name, q in VARIANTS.items()
        },
    }


def _assert_same(got: list[list[object]], want: list[list[object]], where: str) -> None:
    assert [g[0] for g in got] == [w[0] for w in want], where
    assert [g[2] for g in got] == [w[2] for w in want], where
    for g, w in zip(got, want, strict=True):
        assert g[1] == pytest.approx(w[1], abs=1e-6), (where, g[0])


def test_sample_lists_equal_the_recorded_lists(sample_engine: Engine) -> None:
    lists = _lists(sample_engine)
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
