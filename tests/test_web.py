"""The box and the demo pages: markup, escaping, Bulgarian dates, links; in process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from recommender.api import create_app
from recommender.articles import Article
from recommender.web.render import Renderer, bulgarian_date, safe_href

SOFIA = ZoneInfo("Europe/Sofia")


@dataclass
class Item:
    id: str
    url: str | None
    title: str
    lead: str
    published: datetime | None
    source: str | None


class Tags(HTMLParser):
    """Start tags with their attributes, and the text, of a fragment."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


@pytest.fixture(scope="module")
def client(sample_index: Path, settings_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings_factory(index_dir=sample_index))) as c:
        yield c


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2025, 12, 17, 9, 0, tzinfo=UTC), "17 декември 2025"),
        (datetime(2026, 1, 31, 22, 30, tzinfo=UTC), "1 февруари 2026"),  # 00:30 in Sofia
        (datetime(2026, 5, 4, 12, 0, tzinfo=UTC), "4 май 2026"),
    ],
)
def test_bulgarian_date_in_the_site_zone(moment: datetime, shown: str) -> None:
    assert bulgarian_date(moment, SOFIA) == shown


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://bta.bg/a/1", "https://bta.bg/a/1"),
        ("/news/1", "/news/1"),
        ("javascript:alert(1)", None),
        ("//evil.example/x", None),
        ("data:text/html,x", None),
        (None, None),
    ],
)
def test_only_web_links_become_links(url: str | None, href: str | None) -> None:
    assert safe_href(url) == href


def test_the_box_escapes_every_text_and_never_links_a_script_url() -> None:
    item = Item(
        id='x"1',
        url="javascript:alert(1)",
        title="<script>alert('заглавие')</script>",
        lead="<img src=x onerror=alert(1)>",
        published=datetime(2025, 12, 17, 9, 0, tzinfo=UTC),
        source="<b>bta</b>",
    )
    html = Renderer("Europe/Sofia").box("q1", [item])
    parsed = Tags(html)
    assert [t for t, _ in parsed.tags if t in ("script", "img", "b", "a")] == []
    assert "<script>alert('заглавие')</script>" in parsed.text
    assert "<img src=x onerror=alert(1)>" in parsed.text
    assert ("li", {"class": "related-stories__item", "data-article-id": 'x"1'}) in parsed.tags


def test_the_fragment_is_a_labelled_section_with_a_list(
    client: TestClient, sample_articles: list[Article]
) -> None:
    article = sample_articles[0]
    r = client.get(f"/articles/{article.id}/related.html", params={"k": 4})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none'
    expected = client.get(f"/articles/{article.id}/related", params={"k": 4}).json()["items"]
    parsed = Tags(r.text)
    section = parsed.tags[0]
    assert section[0] == "section" and section[1]["class"] == "related-stories"
    heading = next(a for t, a in parsed.tags if t == "h2")
    assert section[1]["aria-labelledby"] == heading["id"]
    assert [t for t, _ in parsed.tags].count("ul") == 1
    items = [a["data-article-id"] for t, a in parsed.tags if t == "li"]
    assert items == [i["id"] for i in expected]
    links = [a["href"] for t, a in parsed.tags if t == "a"]
    assert links == [i["url"] for i in expected]
    dates = [a["datetime"] for t, a in parsed.tags if t == "time"]
    assert len(dates) == 4
    for i in expected:
        assert i["title"] in parsed.text and i["source"] in parsed.text
        shown = bulgarian_date(datetime.fromisoformat(i["published"]), SOFIA)
        assert shown in parsed.text
    assert "<script" not in r.text


def test_the_fragment_takes_the_json_api_parameters(
    client: TestClient, sample_articles: list[Article]
) -> None:
    article = sample_articles[0]
    other = next(a.section for a in sample_articles if a.section != article.section)
    params = {"k": 2, "section": other}
    expected = client.get(f"/articles/{article.id}/related", params=params).json()["items"]
    parsed = Tags(client.get(f"/articles/{article.id}/related.html", params=params).text)
    assert [a["data-article-id"] for t, a in parsed.tags if t == "li"] == [
        i["id"] for i in expected
    ]
    assert client.get(f"/articles/{article.id}/related.html", params={"k": 0}).status_code == 422


def test_the_fragment_of_an_unknown_id_is_404(client: TestClient) -> None:
    r = client.get("/articles/no-such-id/related.html")
    assert r.status_code == 404 and r.json() == {"error": "article 'no-such-id' is not indexed"}


def test_no_story_gives_an_empty_fragment(
    client: TestClient, sample_articles: list[Article]
) -> None:
    article = sample_articles[0]
    r = client.get(f"/articles/{article.id}/related.html", params={"section": "no-such-section"})
    assert r.status_code == 200 and r.text == ""


def test_demo_article_page_has_the_article_and_a_placeholder_no_inline_script(
    client: TestClient, sample_articles: list[Article]
) -> None:
    article = sample_articles[0]
    r = client.get(f"/demo/articles/{article.id}")
    assert r.status_code == 200
    assert "script-src" not in r.headers["content-security-policy"]
    parsed = Tags(r.text)
    assert article.title in parsed.text and article.lead in parsed.text
    placeholder = next(a for t, a in parsed.tags if "data-related-article" in a)
    assert placeholder["data-related-article"] == article.id
    assert placeholder["data-link"] == "/demo/articles/{id}"
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert scripts == [{"src": "/static/related.js", "defer": None}]
    js = client.get("/static/related.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/demo/articles/no-such-id").status_code == 404


@pytest.mark.parametrize("name", ["related.js", "related.css", "demo.css"])
def test_a_static_file_answers_304_to_its_own_etag(client: TestClient, name: str) -> None:
    first = client.get(f"/static/{name}")
    assert first.status_code == 200 and first.content
    again = client.get(f"/static/{name}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert (
        again.headers["cache-control"] == first.headers["cache-control"] == "public, max-age=3600"
    )
    assert client.get(f"/static/{name}", headers={"If-None-Match": '"x"'}).status_code == 200


def test_demo_index_lists_the_latest_articles(
    client: TestClient, sample_articles: list[Article]
) -> None:
    parsed = Tags(client.get("/demo").text)
    links = [
        a["href"] for t, a in parsed.tags if t == "a" and a.get("class") == "article-list__link"
    ]
    newest = max(
        sample_articles, key=lambda a: (a.published or datetime.min.replace(tzinfo=UTC), a.id)
    )
    assert links[0] == f"/demo/articles/{newest.id}"
    assert len(links) == 40


def test_no_demo_when_turned_off(sample_index: Path, settings_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings_factory(index_dir=sample_index, demo=False))) as c:
        assert c.get("/demo").status_code == 404
        assert c.get("/static/related.js").status_code == 200
