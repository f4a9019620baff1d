from pathlib import Path

from recommender.articles import Article
from recommender.inputs import Reject, read_rows


def test_jsonl_rows_and_rejects_name_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": "a1", "title": "Заглавие", "body": "Текст", "published": "2026-07-01"}\n'
        "\n"
        '{"id": "a2", "title": "", "body": "Текст"}\n'
        "{not json\n"
        '{"id": "a3", "title": "Само заглавие"}\n'
        '{"id": 4, "title": "Число", "subtitle": "Подзаглавие", "site": "x.bg", "tags": ["a"]}\n'
        "[1, 2]\n",
        encoding="utf-8",
    )
    rows = list(read_rows(src))
    assert [line for line, _ in rows] == [1, 3, 4, 5, 6, 7]
    ok = [item for _, item in rows if isinstance(item, Article)]
    bad = [item for _, item in rows if isinstance(item, Reject)]
    assert [a.id for a in ok] == ["a1", "4"]
    assert ok[0].published is not None and ok[0].published.tzinfo is not None
    assert ok[1].lead == "Подзаглавие" and ok[1].source == "x.bg"
    assert [(r.line, r.reason.split(":")[0]) for r in bad] == [
        (3, "field 'title'"),
        (4, "invalid JSON"),
        (5, "needs a non-empty 'body' or 'lead'"),
        (7, "expected a JSON object"),
    ]
    assert all(r.source == str(src) for r in bad)


def test_csv_with_tags_and_bad_date(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "id,title,lead,body,published,tags,section\n"
        'b1,Заглавие,Увод,"Текст, със запетая",2026-07-01T10:00:00+03:00,спорт|футбол,sport\n'
        "b2,Друго,,Текст,вчера,,\n",
        encoding="utf-8",
    )
    rows = list(read_rows(src))
    first, second = rows[0][1], rows[1][1]
    assert isinstance(first, Article) and first.tags == ["спорт", "футбол"]
    assert first.body == "Текст, със запетая"
    assert isinstance(second, Reject) and second.line == 3 and "published" in second.reason


def test_content_hash_follows_text_only() -> None:
    a = Article(id="x", title="T", body="B", section="s")
    b = Article(id="y", title="T", body="B", section="other")
    c = Article(id="x", title="T", body="B2")
    assert a.content_hash() == b.content_hash() != c.content_hash()
