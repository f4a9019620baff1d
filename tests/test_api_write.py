"""Writes over HTTP (in process): auth, PUT/DELETE/bulk, and ETags that follow the lists."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from recommender.api import create_app
from recommender.articles import Article
from recommender.storage.generations import IndexDir

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = "application/json"


@pytest.fixture()
def client(tmp_path: Path, sample_index: Path, settings_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    shutil.copytree(sample_index, tmp_path / "idx")
    app = create_app(settings_factory(index_dir=tmp_path / "idx", api_keys=f"other,{KEY}"))
    with TestClient(app) as c:
        yield c


def _body(a: Article) -> dict[str, object]:
    return a.model_dump(mode="json", exclude={"id"})


def test_writes_need_a_key(sample_index: Path, settings_factory, sample_articles) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings_factory(index_dir=sample_index))) as c:
        r = c.put("/articles/x", json=_body(sample_articles[0]))
        assert r.status_code == 403 and "RECOMMENDER_API_KEYS" in r.json()["error"]
    app = create_app(settings_factory(index_dir=sample_index, api_keys=KEY))
    with TestClient(app) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = c.delete("/articles/a1001", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert set(r.json()) == {"error"}
        assert c.get("/articles/a1001/related").status_code == 200


def test_the_schema_names_the_key_on_every_write_and_only_there(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["WriteKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    writes = 0
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if "write" in op.get("tags", []):
                writes += 1
                assert op["security"] == [{"WriteKey": []}], (method, path)
                assert {"401", "403"} <= set(op["responses"])
            else:
                assert "security" not in op, (method, path)
    assert writes == 4


def _listed_in(client: TestClient, articles: list[Article], article_id: str) -> list[str]:
    return [
        a.id
        for a in articles
        if a.id != article_id
        and article_id in {i["id"] for i in client.get(f"/articles/{a.id}/related").json()["items"]}
    ]


def _waves_done(client: TestClient) -> None:
    """Wait until /readyz reports no pending second wave (the follower runs it within 0.2 s)."""
    deadline = time.monotonic() + 30
    while client.get("/readyz").json()["waves_pending"]:
        assert time.monotonic() < deadline, "the second wave did not run"
        time.sleep(0.05)


def test_delete_then_publish_again(client: TestClient, sample_articles: list[Article]) -> None:
    article = next(a for a in sample_articles if a.id == "a1004")
    holders = _listed_in(client, sample_articles, article.id)
    assert holders
    r = client.delete(f"/articles/{article.id}", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert client.get(f"/articles/{article.id}/related").status_code == 404
    assert _listed_in(client, sample_articles, article.id) == []
    assert client.delete(f"/articles/{article.id}", headers=AUTH).status_code == 404
    r = client.put(f"/articles/{article.id}", json=_body(article), headers=AUTH)
    assert r.status_code == 201 and r.json()["status"] == "created"
    related = client.get(f"/articles/{article.id}/related").json()
    assert related["count"] == 5 and article.id not in {i["id"] for i in related["items"]}
    _waves_done(client)  # the older lists are the write's second wave
    assert _listed_in(client, sample_articles, article.id) == holders
    again = client.put(f"/articles/{article.id}", json=_body(article), headers=AUTH)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"


def test_put_validates_and_names_the_field(client: TestClient) -> None:
    r = client.put("/articles/x", json={"title": "Заглавие"}, headers=AUTH)
    assert r.status_code == 422 and "body" in r.json()["error"]
    r = client.put("/articles/x", json={"lead": "само увод"}, headers=AUTH)
    assert r.status_code == 422 and "title" in r.json()["error"]


def test_bulk_upsert_reports_each_item_and_keeps_the_valid(
    client: TestClient, sample_articles: list[Article]
) -> None:
    good = [a.model_copy(update={"id": f"bulk-{i}"}) for i, a in enumerate(sample_articles[:3])]
    items = [a.model_dump(mode="json") for a in good]
    items.insert(1, {"id": "bad", "title": "Без текст"})
    items.insert(3, ["not", "an", "object"])
    r = client.post("/articles", json=items, headers=AUTH)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == [
        "created",
        "rejected",
        "created",
        "rejected",
        "created",
    ]
    assert "needs a non-empty 'body' or 'lead'" in results[1]["reason"]
    assert results[1]["id"] == "bad"
    assert r.json()["counts"] == {"created": 3, "rejected": 2}
    ndjson = b"".join(orjson.dumps(i) + b"\n" for i in items[:1])
    r = client.post(
        "/articles", content=ndjson, headers=AUTH | {"content-type": "application/x-ndjson"}
    )
    assert r.json()["results"][0]["status"] == "unchanged"
    r = client.post("/articles", json=[items[0]] * 1001, headers=AUTH)
    assert r.status_code == 413 and "at most 1000" in r.json()["error"]
    huge = b"[" + b" " * (33 * 2**20) + b"]"
    r = client.post("/articles", content=huge, headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == 413 and "body too large" in r.json()["error"]
    r = client.post("/articles", content=b"{nope", headers=AUTH | {"content-type": JSON})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.request("DELETE", "/articles", json={"ids": ["bulk-0", "nope"]}, headers=AUTH)
    assert [x["status"] for x in r.json()["results"]] == ["deleted", "not_found"]


def test_etag_changes_exactly_when_the_list_changes(
    client: TestClient, sample_articles: list[Article]
) -> None:
    def etag(article_id: str) -> str:
        return client.get(f"/articles/{article_id}/related").headers["etag"]

    before = {a.id: etag(a.id) for a in sample_articles}
    target = sample_articles[0]
    first = client.get(f"/articles/{target.id}/related").json()["items"][0]["id"]
    r = client.delete(f"/articles/{first}", headers=AUTH)
    assert r.status_code == 200
    after = {a.id: etag(a.id) for a in sample_articles if a.id != first}
    changed = {i for i in after if after[i] != before[i]}
    assert target.id in changed
    assert len(changed) < len(after) / 2  # one write does not invalidate every answer
    for article_id in after:
        items = client.get(f"/articles/{article_id}/related").json()["items"]
        assert (first in {i["id"] for i in items}) is False
    tag = after[target.id]
    url = f"/articles/{target.id}/related"
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f"W/{tag}"}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f'"x", {tag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    missing = client.get("/articles/nope/related", headers={"If-None-Match": "*"})
    assert missing.status_code == 404


def test_a_full_store_answers_507_and_reads_go_on(
    tmp_path: Path,
    sample_index: Path,
    settings_factory,
    sample_articles: list[Article],  # type: ignore[no-untyped-def]
) -> None:
    """A real SQLITE_FULL (the store capped at its size + 256 KiB with SQLite's
    max_page_count): PUTs of long articles are acknowledged until the store is full, then
    answer 507 naming the cause; /metrics counts it, /readyz says it, reads go on, every
    acknowledged write is kept and the refused one is not half-written."""
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    store = next(index.glob("gen-*/store.sqlite"))
    db = sqlite3.connect(store)
    (size,) = db.execute(
        "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"
    ).fetchone()
    db.close()
    settings = settings_factory(index_dir=index, api_keys=KEY, store_max_bytes=size + 256 * 1024)
    body = _body(sample_articles[0]) | {"body": "Дълъг текст за запълване на диска. " * 2000}
    with TestClient(create_app(settings)) as c:
        acked, refused = [], None
        for n in range(20):
            r = c.put(
                f"/articles/big-{n}", json=body | {"title": f"Дълга статия {n}"}, headers=AUTH
            )
            if r.status_code == 507:
                refused = (f"big-{n}", r.json())
                break
            assert r.status_code == 201, r.text
            acked.append(f"big-{n}")
        assert acked and refused is not None, acked
        refused_id, error = refused
        assert set(error) == {"error"} and "disk holding it is full" in error["error"]
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "cannot grow" in ready.json()["writes"]
        metrics = c.get("/metrics").text
        assert 'recommender_writes_refused_total{reason="store_full"} 1.0' in metrics
        assert c.get(f"/articles/{refused_id}").status_code == 404
        assert c.get(f"/articles/{refused_id}/related").status_code == 404
        for article_id in [*acked, sample_articles[1].id]:
            assert c.get(f"/articles/{article_id}/related").status_code == 200


def test_a_write_while_a_damaged_generation_is_current_is_503_and_reads_go_on(
    client: TestClient, tmp_path: Path
) -> None:
    """A rebuild switched to a generation whose store is damaged: a write is refused with 503
    and Retry-After (never a 500), nothing is written, reads answer from the served one."""
    index = IndexDir(tmp_path / "idx")
    served = index.current()
    damaged = served.with_name("gen-999999")
    shutil.copytree(served, damaged)
    store = damaged / "store.sqlite"
    size = store.stat().st_size
    with store.open("r+b") as fh:
        for offset in range(4096, size, 4 * 4096):
            fh.seek(offset)
            fh.write(bytes(4096))
    index.switch(damaged)
    r = client.put("/articles/new-1", json={"title": "Ново", "body": "Текст."}, headers=AUTH)
    assert r.status_code == 503, r.text
    assert set(r.json()) == {"error"} and r.headers["Retry-After"]
    assert client.get("/articles/a1001/related").status_code == 200
    assert client.get("/articles/new-1").status_code == 404
    metrics = client.get("/metrics").text
    assert 'recommender_writes_refused_total{reason="index_unavailable"} 1.0' in metrics
