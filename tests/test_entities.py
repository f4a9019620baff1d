"""Heuristic named entities: keys that join scripts and inflections, extraction, overlap."""

from __future__ import annotations

import pytest

from recommender.articles import Article
from recommender.text.entities import (
    Entities,
    EntityStats,
    Overlap,
    article_entities,
    entity_key,
    extract_entities,
    overlap,
    overlaps,
)


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [("Ryanair", "Райънеър"), ("Brexit", "Брекзит"), ("NATO", "НАТО"), ("Merkel", "Меркел")],
)
def test_transliterated_forms_share_a_key(latin: str, cyrillic: str) -> None:
    assert entity_key(latin) == entity_key(cyrillic)


def test_inflected_forms_share_a_key() -> None:
    assert entity_key("Борисов") == entity_key("Борисова")
    assert entity_key("Европейският") == entity_key("Европейската")
    assert entity_key("Шойгу") != entity_key("Пхенян")


def test_extraction_skips_sentence_starts_and_stop_words() -> None:
    text = (
        "Министърът Сергей Шойгу пристигна в Пхенян. Шойгу се срещна с военни. "
        'Вчера НАТО и Ryanair не коментираха. "Ние сме готови", каза той.'
    )
    found = extract_entities(text)
    assert set(found.names.values()) == {"Сергей", "Шойгу", "Пхенян", "НАТО", "Ryanair"}
    assert found.counts[entity_key("Шойгу")] == 2


def test_article_entities_reads_title_and_body() -> None:
    article = Article(
        id="a1",
        title="Визита в Пхенян",
        body="Делегацията на Ryanair кацна в Пловдив. Там я посрещна кметът Иван Петров.",
    )
    names = set(article_entities(article).names.values())
    assert {"Пхенян", "Ryanair", "Пловдив", "Иван", "Петров"} <= names


def test_overlap_is_weighted_and_names_shared_rarest_first() -> None:
    a = extract_entities("Вчера Шойгу пристигна в Пхенян, съобщи агенция Синхуа от София.")
    b = extract_entities("Днес Шойгу замина от Пхенян за София.")
    c = extract_entities("Днес кметът на София откри нов парк.")
    stats = EntityStats.fit([a, b, c])
    result = overlap(a, b, stats)
    assert result.shared[-1] == "София"
    assert set(result.shared) == {"Шойгу", "Пхенян", "София"}
    assert 0.0 < result.score < 1.0
    assert overlap(a, c, stats).score < result.score
    assert overlap(a, a, stats).score == pytest.approx(1.0)
    assert overlap(Entities(), Entities(), stats).score == 0.0


def test_stats_follow_articles_coming_and_going() -> None:
    first = extract_entities("Срещата в Пхенян. Там Шойгу видя Пхенян.")
    second = extract_entities("В Москва пристигна Шойгу.")
    stats = EntityStats.fit([first, second])
    shoigu, pyongyang = entity_key("Шойгу"), entity_key("Пхенян")
    assert stats.frequency(shoigu) == 2 and stats.docs == 2
    rare = stats.idf(pyongyang)
    assert rare > stats.idf(shoigu)
    stats.remove(first)
    assert stats.docs == 1 and stats.frequency(pyongyang) == 0 and stats.frequency(shoigu) == 1
    assert stats.idf(pyongyang) != rare  # the weights follow the change at once
    stats.add(first)
    assert stats.idf(pyongyang) == pytest.approx(rare)


def test_overlaps_equals_pairwise_overlap() -> None:
    texts = [
        "Премиерът Иван Тонев се срещна с Ryanair в Пловдив. Тонев обеща летище.",
        "Райънеър отваря линии от Пловдив, каза Тонев.",
        "В Бургас валя сняг.",
        "НАТО и Пловдив: учение край Бургас с участието на Тонев.",
    ]
    ents = [extract_entities(t) for t in texts]
    stats = EntityStats.fit(ents)
    batch = overlaps(ents[0], ents[1:], stats)
    single = [overlap(ents[0], e, stats) for e in ents[1:]]
    assert [o.shared for o in batch] == [o.shared for o in single]
    assert [o.score for o in batch] == pytest.approx([o.score for o in single])
    assert batch[1] == Overlap(0.0, []) and batch[0].score > 0


def test_overlaps_with_a_text_whose_names_the_index_has_never_seen() -> None:
    """The weights computed for one call must cover keys a later call brings in."""
    indexed = [
        extract_entities("Вчера Шойгу пристигна в Пхенян."),
        extract_entities("Днес Шойгу замина за Москва."),
    ]
    stats = EntityStats.fit(indexed)
    overlaps(indexed[0], indexed[1:], stats)
    unseen = extract_entities("Вчера Зоравинков и Шойгу се срещнаха.")
    (result,) = overlaps(indexed[0], [unseen], stats)
    assert result == overlap(indexed[0], unseen, stats)
    assert result.shared == ["Шойгу"]
