"""The Bulgarian analyzer and the TF-IDF / BM25 index, on small fictional articles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.storage.lexical import LexicalConfig, LexicalIndex
from recommender.text.analyzer import Analyzer, AnalyzerConfig

ARTICLES = [
    Article(
        id="port",
        title="Пристанището във Варна отваря нов терминал",
        body="Новият терминал на пристанището във Варна ще приема контейнерни кораби от май.",
    ),
    Article(
        id="port-2",
        title="Нов контейнерен терминал във Варна",
        body="Пристанище Варна обяви, че контейнерният терминал ще работи от май.",
    ),
    Article(
        id="bees",
        title="Пчеларите в Родопите очакват слаба година",
        body="Студената пролет намали цъфтежа и пчеларите в Родопите очакват по-малко мед.",
    ),
    Article(
        id="theatre",
        title="Театърът в Русе показва нова постановка",
        body="Драматичният театър в Русе представя премиера на комедия тази събота.",
    ),
]


def test_analyzer_drops_stop_words_and_stems_to_prefix() -> None:
    analyzer = Analyzer(AnalyzerConfig(stemmer="prefix", prefix_len=6))
    assert analyzer("Той и пристанищата на Варна, 2024!") == ["приста", "варна"]


@pytest.mark.parametrize("stemmer", ["bulstem", "lemmagen"])
def test_other_stemmers_join_inflected_forms(stemmer: str) -> None:
    analyzer = Analyzer(AnalyzerConfig(stemmer=stemmer))  # type: ignore[arg-type]
    assert analyzer("министрите")[0] == analyzer("министър")[0]


@pytest.mark.parametrize("method", ["tfidf", "bm25"])
def test_scores_rank_the_same_story_first(method: str) -> None:
    index = LexicalIndex.build(ARTICLES)
    scores = index.scores(ARTICLES[0], method)  # type: ignore[arg-type]
    assert scores.shape == (len(ARTICLES),)
    others = np.argsort(-scores)[1:]
    assert index.ids[int(others[0])] == "port-2"
    assert scores[index.ids.index("bees")] == pytest.approx(0.0)


def test_tfidf_is_a_cosine() -> None:
    index = LexicalIndex.build(ARTICLES)
    scores = index.scores(ARTICLES[2])
    assert scores[2] == pytest.approx(1.0, abs=1e-5)
    assert np.all(scores <= 1.0 + 1e-5)


def test_text_query_and_save_load(tmp_path: Path) -> None:
    index = LexicalIndex.build(ARTICLES, LexicalConfig(title_weight=1))
    index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert loaded.ids == index.ids
    assert loaded.config == index.config
    for method in ("tfidf", "bm25"):
        query = "премиера в театъра в Русе"
        np.testing.assert_allclose(
            loaded.scores(query, method),  # type: ignore[arg-type]
            index.scores(query, method),  # type: ignore[arg-type]
            rtol=1e-6,
        )
    assert int(np.argmax(loaded.scores("премиера в театъра в Русе"))) == 3
    assert not list((tmp_path / "lexical").rglob("*.pkl"))
