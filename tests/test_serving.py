"""The HTTP plumbing and the hardening defects, in process (TestClient) over the real sample
index and model: one error shape, early size limits, CORS, caching, metrics, logs, docs."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.api import create_app
from recommender.articles import Article
from recommender.ranking.config import RankingConfig

HAND = RankingConfig(model=None)  # the hand fusion: no ranking model under that models_dir

ERROR_STATUSES = ("400", "404", "405", "413", "414", "422", "429", "500", "503")
SITE = "https://www.example-news.bg"


@pytest.fixture(scope="module")
def client(sample_index: Path, settings_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = settings_factory(
        index_dir=sample_index,
        cors_origins=[SITE],
        cache_max_age=120,
        cache_stale_while_revalidate=30,
        cache_stale_if_error=3600,
        max_body_bytes=20_000,
    )
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture()
def article_id(sample_articles: list[Article]) -> str:
    return sample_articles[0].id


def _is_error(response: Any, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return dict(body)


# --- one error shape, documented -------------------------------------------------------------


def test_unknown_path_and_wrong_method_have_the_error_shape(client: TestClient) -> None:
    assert "no-store" in client.get("/nowhere").headers["cache-control"]
    _is_error(client.get("/nowhere"), 404)
    r = client.delete("/related")
    _is_error(r, 405)
    assert r.headers["allow"] == "POST"


def test_body_that_is_not_json_is_400_in_the_error_shape(client: TestClient) -> None:
    r = client.post("/related", content=b"{not json", headers={"content-type": "application/json"})
    assert "not valid JSON" in _is_error(r, 400)["error"]


def test_openapi_documents_one_error_shape_for_every_error(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["error"]
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            errors = {s: r for s, r in op["responses"].items() if s in ERROR_STATUSES}
            assert {"413", "414"} <= set(errors), (method, path)
            for response in errors.values():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorOut"
    post = schema["paths"]["/related"]["post"]["responses"]
    assert {"400", "422", "503"} <= set(post)


def test_the_schema_refuses_an_empty_text_query_as_the_server_does(client: TestClient) -> None:
    """`{}` was valid by the schema and refused by the server; now both refuse it."""
    body_schema = client.get("/openapi.json").json()["components"]["schemas"]["TextQuery"]
    assert {tuple(branch["required"]) for branch in body_schema["anyOf"]} == {
        ("title",),
        ("lead",),
        ("body",),
    }
    assert "no letter or digit" in _is_error(client.post("/related", json={}), 422)["error"]


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("published", ["2026-07-01T00:00:00", "2026-07-01"])
def test_published_without_zone_is_utc_not_a_500(client: TestClient, published: str) -> None:
    r = client.post(
        "/related", json={"title": "Бюджет 2027 на първо четене", "published": published}
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 5


@pytest.mark.parametrize(
    ("since", "until"),
    [("0001-01-01T00:00:00+14:00", None), (None, "9999-12-31T23:59:59-14:00")],
)
def test_since_and_until_at_the_calendar_edges_are_not_a_500(
    client: TestClient, article_id: str, since: str | None, until: str | None
) -> None:
    params = {"since": since} if since else {"until": until}
    r = client.get(f"/articles/{article_id}/related", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 5


def test_naive_since_is_utc_not_the_server_zone(
    client: TestClient, sample_articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    """since = until = an article's time in UTC, without zone: that article passes the filter,
    also on a server whose local zone is not UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        query, target = sample_articles[0], sample_articles[1]
        assert target.published is not None
        moment = target.published.astimezone(UTC).replace(tzinfo=None).isoformat()
        r = client.get(
            f"/articles/{query.id}/related",
            params={"since": moment, "until": moment, "stage": "ranked"},
        )
        assert target.id in [i["id"] for i in r.json()["items"]]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("value", ["0.5", "1700000000"])
def test_a_number_is_not_a_date(client: TestClient, article_id: str, value: str) -> None:
    r = client.get(f"/articles/{article_id}/related", params={"until": value})
    assert "query.until" in _is_error(r, 422)["error"]
    r = client.post("/related", json={"title": "Бюджет", "published": float(value)})
    assert "published" in _is_error(r, 422)["error"]


# --- text that is not text -------------------------------------------------------------------


@pytest.mark.parametrize("title", ["\x00\x00", "\u200b\u200b", "\u00a0\u00a0", "\ufeff \u2060"])
def test_a_title_of_invisible_characters_is_not_text(client: TestClient, title: str) -> None:
    r = client.post("/related", json={"title": title})
    assert "no letter or digit" in _is_error(r, 422)["error"]


def test_an_article_title_of_invisible_characters_is_refused_at_input() -> None:
    with pytest.raises(ValueError, match="title"):
        Article(id="x1", title="\u200b\x00", body="Текст на статията.")


# --- ids with "/" ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["2026/05/story", "..", "."])
def test_an_id_that_is_not_one_url_segment_is_refused_at_input(bad: str) -> None:
    with pytest.raises(ValueError, match="one URL segment"):
        Article(id=bad, title="Заглавие", body="Текст.")


# --- size limits, answered before reading ------------------------------------------------------


def test_a_body_over_the_limit_is_413_from_its_content_length(client: TestClient) -> None:
    r = client.post(
        "/related",
        content=b"{" + b" " * 30_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert "body too large" in _is_error(r, 413)["error"]


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(40):
            yield b"x" * 1_000
        yield b'"}'

    r = client.post("/related", content=chunks(), headers={"content-type": "application/json"})
    _is_error(r, 413)


def test_a_long_url_is_414(client: TestClient, article_id: str) -> None:
    r = client.get(f"/articles/{article_id}/related", params={"section": "x" * 40_000})
    assert "URL too long" in _is_error(r, 414)["error"]


# --- readiness ---------------------------------------------------------------------------------


def test_readyz_is_503_when_the_encoder_did_not_load(
    sample_index: Path,
    settings_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    article_id: str,
) -> None:
    app = create_app(settings_factory(index_dir=sample_index, models_dir=tmp_path, ranking=HAND))
    with TestClient(app) as c:
        assert "encoder not loaded" in _is_error(c.get("/readyz"), 503)["error"]
        assert c.get(f"/articles/{article_id}/related").status_code == 200
        _is_error(c.post("/related", json={"title": "Бюджет"}), 503)


# --- caching, CORS, security headers -----------------------------------------------------------


def test_cache_control_lets_a_cdn_serve_stale(client: TestClient, article_id: str) -> None:
    expected = "public, max-age=120, stale-while-revalidate=30, stale-if-error=3600"
    for path in (f"/articles/{article_id}/related", f"/articles/{article_id}/related.html"):
        r = client.get(path)
        assert r.headers["cache-control"] == expected
        again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == expected


def test_cors_for_the_site_origin_only(client: TestClient, article_id: str) -> None:
    path = f"/articles/{article_id}/related.html"
    r = client.get(path, headers={"Origin": SITE})
    assert r.headers["access-control-allow-origin"] == SITE
    assert "origin" in r.headers["vary"].lower()
    r = client.get(path, headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in r.headers
    preflight = {
        "Origin": SITE,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    r = client.options("/related", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SITE
    assert "POST" in r.headers["access-control-allow-methods"]
    r = client.options("/related", headers=preflight | {"Origin": "https://elsewhere.example"})
    assert "origin" in _is_error(r, 400)["error"]


def test_no_cors_when_no_origin_is_configured(
    sample_index: Path,
    settings_factory,
    article_id: str,  # type: ignore[no-untyped-def]
) -> None:
    with TestClient(create_app(settings_factory(index_dir=sample_index))) as c:
        r = c.get(f"/articles/{article_id}/related", headers={"Origin": SITE})
        assert "access-control-allow-origin" not in r.headers


def test_security_headers_on_every_answer(client: TestClient, article_id: str) -> None:
    for r in (client.get("/healthz"), client.get("/nowhere"), client.get("/docs")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "server" not in r.headers


# --- docs offline, metrics, logs ---------------------------------------------------------------


def test_docs_load_no_external_script(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "https://" not in page and "http://" not in page
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in page
        assert client.get(asset).status_code == 200
    assert client.get("/redoc").status_code == 404


def test_metrics_count_requests_per_route_and_status(client: TestClient, article_id: str) -> None:
    def count(route: str, status: str) -> float:
        text = client.get("/metrics").text
        for line in text.splitlines():
            if line.startswith("recommender_http_requests_total{") and (
                f'route="{route}"' in line and f'status="{status}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    route = "/articles/{article_id}/related"
    before_ok, before_missing = count(route, "200"), count(route, "404")
    client.get(f"/articles/{article_id}/related", params={"k": 2})
    client.get(f"/articles/{article_id}/related", params={"k": 3})
    client.get("/articles/no-such-id/related")
    assert count(route, "200") == before_ok + 2
    assert count(route, "404") == before_missing + 1
    text = client.get("/metrics").text
    assert "recommender_index_articles 173.0" in text
    assert "recommender_log_lag_changes 0.0" in text
    # the served index's lists, computed when it was built (known values: tests/test_gauges.py)
    (lag,) = [float(x.split()[1]) for x in text.splitlines() if x.startswith("recommender_list_")]
    assert lag > 0
    assert (
        f'recommender_http_request_duration_seconds_bucket{{le="0.001",method="GET",route="{route}"'
        in text
    )

    def encodes() -> float:
        line = next(
            x
            for x in client.get("/metrics").text.splitlines()
            if x.startswith("recommender_encode_seconds_count")
        )
        return float(line.rsplit(" ", 1)[1])

    before = encodes()
    client.post("/related", json={"title": "Бюджет 2027"})
    assert encodes() == before + 1


def test_the_loaded_model_and_mirror_are_kept_out_of_garbage_collections(
    client: TestClient,
) -> None:
    """A full collection over a loaded worker took 0.4 s, a pause for every read it held."""
    assert gc.get_freeze_count() > 100_000


def test_access_log_is_one_json_line_per_request(
    client: TestClient, article_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client.get(f"/articles/{article_id}/related", params={"k": 2})
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    entry = next(e for e in lines if e["path"] == f"/articles/{article_id}/related")
    assert entry["route"] == "/articles/{article_id}/related" and entry["status"] == 200
    assert entry["query"] == "k=2" and entry["duration_ms"] > 0 and entry["bytes"] > 0
    assert logging.getLogger("recommender.access").propagate is False


# --- the encoder: one text at a time, a bounded queue ------------------------------------------


def _count_concurrent_encodes(app: Any, seconds: float) -> dict[str, int]:
    """Wraps the real encoder's per-request call to record how many run at once."""
    encoder = app.state.recommender.engine.encoder
    real = encoder.encode_one
    seen = {"running": 0, "peak": 0, "calls": 0}
    lock = threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            seen["running"] += 1
            seen["calls"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
        try:
            time.sleep(seconds)
            return real(*args, **kwargs)
        finally:
            with lock:
                seen["running"] -= 1

    encoder.encode_one = counted
    return seen


def test_text_queries_are_never_encoded_at_the_same_time(
    sample_index: Path,
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    """The fast tokenizer is not thread-safe ("Already borrowed"): concurrent POST /related
    used to encode on several threads at once."""
    app = create_app(settings_factory(index_dir=sample_index, encode_queue_depth=64))
    with TestClient(app) as c:
        seen = _count_concurrent_encodes(app, seconds=0.05)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(
                    lambda i: c.post("/related", json={"title": f"Бюджет {i}", "k": 2}).status_code,
                    range(16),
                )
            )
    assert statuses == [200] * 16
    assert seen["calls"] == 16 and seen["peak"] == 1


def test_a_full_encode_queue_answers_503_with_retry_after(
    sample_index: Path,
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(settings_factory(index_dir=sample_index, encode_queue_depth=1))
    with TestClient(app) as c:
        seen = _count_concurrent_encodes(app, seconds=0.5)
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(lambda i: c.post("/related", json={"title": f"Бюджет {i}"}), range(6))
            )
    statuses = sorted(r.status_code for r in answers)
    assert 200 in statuses and 503 in statuses and set(statuses) == {200, 503}
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
    assert seen["calls"] == statuses.count(200) and seen["peak"] == 1
