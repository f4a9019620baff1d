"""The Bulgarian analyzer and the live TF-IDF index, against scikit-learn's TfidfVectorizer."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.articles import Article
from recommender.storage.lexical import LexicalIndex, terms_of
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


def _index(articles: list[Article]) -> tuple[LexicalIndex, list[dict[str, int]]]:
    index = LexicalIndex()
    terms = [terms_of(a, index.analyzer, index.config) for a in articles]
    for slot, t in enumerate(terms):
        index.add(slot, t)
    return index, terms


def test_analyzer_drops_stop_words_and_stems_to_prefix() -> None:
    analyzer = Analyzer(AnalyzerConfig(stemmer="prefix", prefix_len=6))
    assert analyzer("Той и пристанищата на Варна, 2024!") == ["приста", "варна"]


@pytest.mark.parametrize("stemmer", ["bulstem", "lemmagen"])
def test_other_stemmers_join_inflected_forms(stemmer: str) -> None:
    analyzer = Analyzer(AnalyzerConfig(stemmer=stemmer))  # type: ignore[arg-type]
    assert analyzer("министрите")[0] == analyzer("министър")[0]


def test_scores_rank_the_same_story_first_and_are_cosines() -> None:
    index, _ = _index(ARTICLES)
    scores = index.scores_of_slot(0)
    assert scores.shape == (len(ARTICLES),)
    assert int(np.argsort(-scores)[1]) == 1
    assert scores[2] == pytest.approx(0.0)
    assert index.scores_of_slot(2)[2] == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(index.scores(index.query_terms("премиера в театъра в Русе")))) == 3


def test_live_index_equals_scikit_learn_after_adds_and_removes(
    sample_articles: list[Article],
) -> None:
    index, terms = _index(sample_articles)
    random.seed(7)
    removed = set(random.sample(range(len(sample_articles)), 25))
    for slot in removed:
        index.remove(slot)
    extra = len(sample_articles)
    index.add(extra, terms[0])  # a re-published copy at a new slot
    live = [s for s in range(len(sample_articles)) if s not in removed] + [extra]
    docs = [[w for w, n in (terms[s % extra]).items() for _ in range(n)] for s in live]
    reference = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True, max_df=0.5)
    matrix = reference.fit_transform(docs)
    for i in (0, 10, len(live) - 1):
        expected = (matrix @ matrix[i].T).toarray().ravel()
        got = index.scores_of_slot(live[i])
        np.testing.assert_allclose(got[live], expected, atol=1e-5)
        assert not got[sorted(removed)].any()
    index.merge()
    expected = (matrix @ matrix[3].T).toarray().ravel()
    np.testing.assert_allclose(index.scores_of_slot(live[3])[live], expected, atol=1e-5)


def test_a_new_term_weighs_as_rare_at_once() -> None:
    index, _ = _index(ARTICLES)
    name = {"зелен": 1}
    assert not index.scores(name).any()
    index.add(4, {"зелен": 2, "варна": 1})
    index.add(5, {"зелен": 1, "русе": 1})
    scores = index.scores_of_slot(4)
    assert scores[5] > 0.3 and scores[5] > scores[1]
