from recommender.embedding.encoder import compose_text
from recommender.text.clean import clean_body, clean_field, normalize_text


def test_boilerplate_lines_are_removed() -> None:
    body = (
        "17 Декември, 2025\n"
        "Правителството прие проектобюджета.\n"
        "снимка: БТА\n"
        "Сподели:\n"
        "Коментари (12)\n"
        "Последвайте ни в Google News\n"
        "Абонирайте се за нашия бюлетин\n"
        "Още по темата\n"
        "Дебатът в парламента започва в понеделник."
    )
    assert clean_body(body) == (
        "Правителството прие проектобюджета.\nДебатът в парламента започва в понеделник."
    )


def test_html_remnants_and_entities() -> None:
    body = (
        "<p>Кметът&nbsp;обяви <strong>нов</strong> план.</p>"
        "<p>&quot;Няма време&quot;, каза той.</p>"
    )
    assert clean_body(body) == 'Кметът обяви нов план.\n"Няма време", каза той.'


def test_quote_dash_and_space_variants_fold() -> None:
    assert normalize_text("„Левски“ – «ЦСКА» — ‘x’") == '"Левски" - "ЦСКА" - \'x\''
    assert clean_field("  много \u00a0  интервали\u200b ") == "много интервали"


def test_repeated_title_and_lead_dropped_from_body() -> None:
    title = "Пожар край Хасково"
    lead = "Огънят обхвана 300 декара."
    body = "Пожар край Хасково\n\nОгънят обхвана 300 декара.\n\nПожарникарите работят цяла нощ."
    assert clean_body(body, title, lead) == "Пожарникарите работят цяла нощ."
    assert compose_text(title, lead, body) == (
        "Пожар край Хасково\nОгънят обхвана 300 декара.\nПожарникарите работят цяла нощ."
    )


def test_ordinary_text_is_kept() -> None:
    text = "Снимката на министъра обиколи социалните мрежи.\nСподелиха я хиляди."
    assert clean_body(text) == text
