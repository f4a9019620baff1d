"""The API in process (FastAPI's TestClient) over the real sample index and model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.api import create_app
from recommender.articles import MAX_BODY, Article
from recommender.ranking.related import K_LIMIT


@pytest.fixture(scope="module")
def client(sample_index: Path, settings_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(settings_factory(index_dir=sample_index))
    with TestClient(app) as c:
        yield c


def test_health_and_ready(client: TestClient, sample_articles: list[Article]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["articles"] == len(sample_articles)
    assert client.get("/openapi.json").json()["paths"]["/articles/{article_id}/related"]


def test_related_by_id_shape_and_self_exclusion(
    client: TestClient, sample_articles: list[Article]
) -> None:
    article = sample_articles[0]
    r = client.get(f"/articles/{article.id}/related", params={"k": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["article_id"] == article.id and body["count"] == 7 == len(body["items"])
    ids = [i["id"] for i in body["items"]]
    assert article.id not in ids and len(set(ids)) == 7
    item = body["items"][0]
    assert set(item) >= {"id", "url", "title", "lead", "published", "source", "score", "reason"}
    # the box puts set-aside reports of one happening last; the ranked stage is by score
    ranked = client.get(f"/articles/{article.id}/related", params={"k": 7, "stage": "ranked"})
    scores = [i["score"] for i in ranked.json()["items"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 7
    assert "max-age" in r.headers["cache-control"]
    again = client.get(
        f"/articles/{article.id}/related",
        params={"k": 7},
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert again.status_code == 304


def test_filters_fill_the_list(client: TestClient, sample_articles: list[Article]) -> None:
    article = sample_articles[0]
    other = next(a.section for a in sample_articles if a.section != article.section)
    r = client.get(f"/articles/{article.id}/related", params={"k": 5, "section": other})
    items = r.json()["items"]
    assert len(items) == 5 and {i["section"] for i in items} == {other}
    first = client.get(f"/articles/{article.id}/related", params={"k": 3}).json()["items"]
    excluded = [i["id"] for i in first]
    r = client.get(f"/articles/{article.id}/related", params={"k": 3, "exclude": excluded})
    assert len(r.json()["items"]) == 3
    assert not set(excluded) & {i["id"] for i in r.json()["items"]}


def test_get_article(client: TestClient, sample_articles: list[Article]) -> None:
    a = sample_articles[5]
    body = client.get(f"/articles/{a.id}").json()
    assert body["id"] == a.id and body["title"] == a.title and body["url"] == a.url


def test_related_by_text(client: TestClient, sample_articles: list[Article]) -> None:
    a = sample_articles[3]
    payload = {"title": a.title, "body": a.body, "k": 3, "published": a.published.isoformat()}
    r = client.post("/related", json=payload | {"stage": "ranked"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert r.json()["article_id"] is None and len(items) == 3
    assert items[0]["id"] == a.id and items[0]["parts"]["dense"] > 0.95
    assert items[0]["reason"] == "same story"
    final = client.post("/related", json=payload).json()["items"]
    assert len(final) == 3 and a.id not in {i["id"] for i in final}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/articles/{id}/related", {"k": 0}, "k"),
        ("/articles/{id}/related", {"k": K_LIMIT + 1}, "k"),
        ("/articles/{id}/related", {"k": "many"}, "k"),
        ("/articles/{id}/related", {"since": "yesterday"}, "since"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    client: TestClient,
    sample_articles: list[Article],
    path: str,
    params: dict[str, object],
    field: str,
) -> None:
    r = client.get(path.format(id=sample_articles[0].id), params=params)
    assert r.status_code == 422
    assert f"query.{field}" in r.json()["error"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "", "body": "   "}, "no letter or digit"),
        ({"title": "x", "body": "я" * (MAX_BODY + 1)}, "body"),
        ({"title": "x", "k": 0}, "k"),
        ({"body": 5}, "body"),
    ],
)
def test_bad_text_queries_are_422(
    client: TestClient, payload: dict[str, object], field: str
) -> None:
    r = client.post("/related", json=payload)
    assert r.status_code == 422
    assert field in r.json()["error"]


def test_unknown_id_is_404_json(client: TestClient) -> None:
    for path in ("/articles/no-such-id", "/articles/no-such-id/related"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.json() == {"error": "article 'no-such-id' is not indexed"}


def test_missing_index_is_not_ready_but_alive(tmp_path: Path, settings_factory) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings_factory(index_dir=tmp_path / "nothing"))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and "no index at" in r.json()["error"]
        assert c.get("/articles/x/related").status_code == 503


def test_per_request_ranking_parameters(client: TestClient, sample_articles: list[Article]) -> None:
    a = sample_articles[0]
    url = f"/articles/{a.id}/related"
    final = client.get(url, params={"k": 5}).json()["items"]
    ranked = client.get(url, params={"k": 5, "stage": "ranked"}).json()["items"]
    dense = client.get(url, params={"k": 5, "method": "dense", "stage": "ranked"}).json()["items"]
    assert {"dense", "lexical", "entities", "freshness"} <= set(ranked[0]["parts"])
    assert [i["parts"]["dense"] for i in dense] == sorted(
        (i["parts"]["dense"] for i in dense), reverse=True
    )
    assert ranked[0]["reason"] == "same story" and final[0]["reason"] != "same story"
    assert all(i["reason"] for i in final)
    everything = {"k": 5, "min_score": -100}
    relevance = client.get(url, params=everything).json()["items"]
    diverse = client.get(url, params=everything | {"diversity": 0.9}).json()["items"]
    assert len(diverse) == 5 and {i["id"] for i in diverse} != {i["id"] for i in relevance}
    strict = client.get(url, params={"k": 5, "min_score": 1000}).json()["items"]
    assert len(strict) == 5
    assert {i["reason"] for i in strict} <= {"same section, recent", "latest"} | {
        i["reason"] for i in strict if i["reason"].startswith("shared: ")
    }
    r = client.get(url, params={"diversity": 2})
    assert r.status_code == 422 and "query.diversity" in r.json()["error"]
    r = client.get(url, params={"stage": "best"})
    assert r.status_code == 422 and "query.stage" in r.json()["error"]
