"""Hybrid ranking and the final stage on small synthetic vectors and fictional articles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.articles import Article
from recommender.ranking.config import RankingConfig
from recommender.ranking.final import dedupe, fallback, final_list, mmr
from recommender.ranking.signals import Candidate, Ranker, Scored, freshness_penalty
from recommender.text.entities import Overlap

DAY0 = datetime(2024, 5, 10, tzinfo=UTC)


def art(
    id_: str, days: float | None = 0, section: str | None = "свят", source: str | None = None
) -> Article:
    published = DAY0 + timedelta(days=days) if days is not None else None
    return Article(
        id=id_,
        title=f"Заглавие {id_}",
        body="Текст на статията.",
        published=published,
        section=section,
        source=source,
    )


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


QUERY = art("q")
PLAIN = RankingConfig(freshness_weight=0.0)


def test_freshness_is_relative_to_the_query_and_neutral_without_dates() -> None:
    cfg = RankingConfig(freshness_window_days=7, freshness_scale_days=1, missing_date_penalty=0.5)
    assert freshness_penalty(3.0, cfg) == 0.0
    assert freshness_penalty(30.0, cfg) == pytest.approx(1.0)
    assert freshness_penalty(None, cfg) == 0.5


def test_rank_fuses_signals_and_explains() -> None:
    candidates = [
        Candidate(art("copy"), dense=0.99, lexical=0.9),
        Candidate(
            art("event"), dense=0.90, lexical=0.3, entities=Overlap(0.4, ["Шойгу", "Пхенян"])
        ),
        Candidate(art("other"), dense=0.80, lexical=0.05),
        Candidate(art("q"), dense=1.0, lexical=1.0),
    ]
    items = Ranker(PLAIN).rank(QUERY, candidates)
    assert [it.article.id for it in items] == ["copy", "event", "other"]
    assert items[0].reason == "same story"
    assert items[1].reason == "shared: Шойгу, Пхенян"
    assert items[2].reason == "same section, recent"
    assert set(items[0].parts) == {"dense", "lexical", "entities", "freshness"}
    assert items[1].parts["entities"] == pytest.approx(0.4)


def test_old_articles_fall_behind_but_reprints_do_not() -> None:
    candidates = [
        Candidate(art("old", days=-60), dense=0.93, lexical=0.4),
        Candidate(art("new", days=-1), dense=0.90, lexical=0.3),
        Candidate(art("old-copy", days=-90), dense=0.99, lexical=0.95),
        Candidate(art("undated", days=None), dense=0.85, lexical=0.2),
    ]
    items = Ranker(RankingConfig()).rank(QUERY, candidates)
    order = [it.article.id for it in items]
    assert order.index("new") < order.index("old")
    assert order[0] == "old-copy"
    assert items[order.index("old")].parts["freshness"] < 0.0


@pytest.mark.parametrize("fusion", ["zscore", "rrf", "linear"])
def test_every_fusion_orders_a_dominant_candidate_first(fusion: str) -> None:
    cfg = RankingConfig(fusion=fusion, freshness_weight=0.0)  # type: ignore[arg-type]
    candidates = [
        Candidate(art("b"), dense=0.8, lexical=0.1),
        Candidate(art("a"), dense=0.9, lexical=0.5),
    ]
    assert Ranker(cfg).rank(QUERY, candidates)[0].article.id == "a"


def scored(id_: str, score: float, vector: np.ndarray, **kw: object) -> Scored:
    article = art(id_, **kw)  # type: ignore[arg-type]
    return Scored(Candidate(article, 0.9, 0.2, vector=vector), score, {}, "similar topic")


def test_dedupe_drops_query_reprints_and_collapses_copies() -> None:
    cfg = RankingConfig(preferred_sources=["pref.bg"])
    reprint = Scored(Candidate(art("rp"), dense=0.99, lexical=0.9), 9.0, {}, "same story")
    items = [
        reprint,
        scored("late", 5.0, unit(1, 0), days=2),
        scored("early", 4.0, unit(1, 0.01), days=-1),
        scored("other", 3.0, unit(0, 1)),
        scored("pref", 2.0, unit(0.01, 1), source="pref.bg"),
    ]
    out = dedupe(items, cfg)
    assert [it.article.id for it in out] == ["early", "pref"]
    assert [it.score for it in out] == [5.0, 3.0]


def test_mmr_trades_relevance_for_diversity() -> None:
    items = [
        scored("a", 3.0, unit(1, 0)),
        scored("a2", 2.9, unit(1, 0.1)),
        scored("b", 2.0, unit(0, 1)),
    ]
    assert [it.article.id for it in mmr(items, 1.0, 2)] == ["a", "a2"]
    assert [it.article.id for it in mmr(items, 0.5, 2)] == ["a", "b"]


def test_final_list_fills_up_from_the_fallback_ladder() -> None:
    cfg = RankingConfig(min_score=100.0, k=2)
    items = [
        scored("far", 1.0, unit(1, 0), days=-30),
        scored("near", 0.5, unit(0, 1), days=-2),
        scored("undated", 0.2, unit(1, 1), days=None, section="спорт"),
    ]
    out = final_list(QUERY, items, cfg)
    assert [it.article.id for it in out] == ["near", "far"]
    assert [it.reason for it in out] == ["same section, recent", "latest"]
    passing = final_list(QUERY, items, cfg.model_copy(update={"min_score": 0.8}))
    assert [it.article.id for it in passing] == ["far", "near"]
    assert passing[0].reason != "latest"
    thread = Scored(
        Candidate(art("t", days=-40), 0.8, 0.1, entities=Overlap(0.2, ["Пхенян"])), 0.1, {}, "x"
    )
    assert [it.article.id for it in fallback(QUERY, [*items, thread], cfg)][:2] == ["t", "near"]
    latest = fallback(art("q2", section="култура"), items, cfg)
    assert [it.reason for it in latest] == ["latest"] * 3
    assert [it.article.id for it in latest] == ["near", "far", "undated"]
