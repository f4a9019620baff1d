"""End to end: the real uvicorn server on a free loopback port, queried over HTTP."""

from __future__ import annotations

import csv
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from recommender.engine import RETIRE_SECONDS
from recommender.sample import sample_corpus
from tests.conftest import SAMPLE_QRELS
from tests.server import build_command, running_server, start_server, stop

pytestmark = pytest.mark.slow
MIN_SAMPLE_RECALL_AT_5 = 0.9


@pytest.fixture(scope="module")
def server(
    sample_index: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("srv")
    with running_server(sample_index, model_dir, tmp / "cache.sqlite", tmp / "server.log") as base:
        yield base


def _judgements() -> dict[str, dict[str, int]]:
    grades: dict[str, dict[str, int]] = {}
    with SAMPLE_QRELS.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            grades.setdefault(row["query_id"], {})[row["doc_id"]] = int(row["grade"])
    return grades


def test_related_stories_over_http_match_the_judgements(server: str) -> None:
    judged = _judgements()
    assert len(judged) == 113  # the sample's queries with a related article (grade 2 or 3)
    recalls, reprints_shown, two_of_one_story = [], 0, 0
    with httpx.Client(base_url=server, timeout=30) as http:
        for query, grades in sorted(judged.items()):
            relevant = {d for d, g in grades.items() if g >= 2}
            ranked = http.get(f"/articles/{query}/related", params={"k": 5, "stage": "ranked"})
            assert ranked.status_code == 200
            got = [i["id"] for i in ranked.json()["items"]]
            assert query not in got
            recalls.append(len(relevant & set(got)) / len(relevant))
            final = http.get(f"/articles/{query}/related", params={"k": 5}).json()["items"]
            shown = [i["id"] for i in final]
            assert len(shown) == 5 and query not in shown
            reprints_shown += any(grades.get(d) == 3 for d in shown)
            stories = [_story(d, judged) for d in shown]
            two_of_one_story += len(stories) != len(set(stories))
        recall = sum(recalls) / len(recalls)
        print(
            f"sample, over HTTP: recall@5 {recall:.3f} on {len(recalls)} queries; final lists "
            f"showing a re-print of the query: {reprints_shown}; with two items of one story: "
            f"{two_of_one_story}"
        )
        assert recall >= MIN_SAMPLE_RECALL_AT_5
        assert reprints_shown == 0 and two_of_one_story == 0

        assert http.get("/articles/unknown/related").status_code == 404
        assert http.get(f"/articles/{query}/related", params={"k": 0}).status_code == 422
        post = http.post("/related", json={"title": "Наводнение по Южното Черноморие", "k": 3})
        assert post.status_code == 200 and post.json()["count"] == 3


def _story(doc: str, judged: dict[str, dict[str, int]]) -> str:
    """A story id: the smallest id among the article and its grade-3 re-prints."""
    return min([doc, *(d for d, g in judged.get(doc, {}).items() if g == 3)])


def test_two_workers_serve_every_write_at_once(
    sample_index: Path, model_dir: Path, tmp_path: Path, sample_articles: list
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    proc, base = start_server(
        index,
        model_dir,
        tmp_path / "cache.sqlite",
        tmp_path / "server.log",
        workers=2,
        RECOMMENDER_API_KEYS="k",
    )
    auth = {"Authorization": "Bearer k"}
    article = next(a for a in sample_articles if a.id == "a1004")
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            holders = [
                a.id
                for a in sample_articles
                if a.id != article.id
                and article.id
                in {i["id"] for i in http.get(f"/articles/{a.id}/related").json()["items"]}
            ]
            assert holders
            assert http.delete(f"/articles/{article.id}", headers=auth).status_code == 200
            for _ in range(10):  # new connections land on either worker
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    for holder in holders:
                        items = fresh.get(f"/articles/{holder}/related").json()["items"]
                        assert article.id not in {i["id"] for i in items}
                    assert fresh.get(f"/articles/{article.id}/related").status_code == 404
            body = article.model_dump(mode="json", exclude={"id"})
            assert http.put(f"/articles/{article.id}", json=body, headers=auth).status_code == 201
            for _ in range(10):
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    assert fresh.get(f"/articles/{article.id}/related").status_code == 200
                    ranked = fresh.get(
                        f"/articles/{holders[0]}/related", params={"stage": "ranked", "k": 20}
                    ).json()["items"]
                    assert article.id in {i["id"] for i in ranked}
    finally:
        stop(proc)


def test_reindex_switches_a_running_server_without_a_failed_request(
    sample_index: Path, model_dir: Path, tmp_path: Path, sample_articles: list
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    cache = tmp_path / "cache.sqlite"
    proc, base = start_server(index, model_dir, cache, tmp_path / "server.log")
    statuses: list[int] = []
    done = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            n = 0
            while not done.is_set() and n < 20_000:
                article = sample_articles[n % len(sample_articles)]
                statuses.append(http.get(f"/articles/{article.id}/related").status_code)
                n += 1

    reader = threading.Thread(target=read)
    try:
        before = httpx.get(f"{base}/readyz").json()["generation"]
        reader.start()
        command, env = build_command(sample_corpus(), index, model_dir, cache)
        subprocess.run(command, env=env, check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/readyz").json()["generation"] == before:
            assert time.monotonic() < deadline, "the server did not follow the new generation"
            time.sleep(0.2)
        time.sleep(RETIRE_SECONDS + 1)  # requests keep coming after the old one is closed
        done.set()
        reader.join()
        assert len(statuses) > 100 and set(statuses) == {200}
        names = sorted(p.name for p in index.iterdir())
        assert names == ["CURRENT", httpx.get(f"{base}/readyz").json()["generation"]]
    finally:
        done.set()
        stop(proc)


def _related_requests(registry: CollectorRegistry) -> float:
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "recommender_http_requests_total"
        and s.labels["route"] == "/articles/{article_id}/related"
    )


def test_two_workers_share_the_connections_and_metrics_add_up(
    sample_index: Path, model_dir: Path, tmp_path: Path, sample_articles: list
) -> None:
    """16 keep-alive connections opened at once against `serve --workers 2`: both readers
    answer some (each has its own SO_REUSEPORT socket), the writer none (it only takes what
    readers hand it, and counts no request), and /metrics, read from either reader, counts every
    request sent."""
    connections, each = 16, 25
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")  # emptied at start
    proc, base = start_server(
        sample_index,
        model_dir,
        tmp_path / "cache.sqlite",
        tmp_path / "server.log",
        workers=2,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        deadline = time.monotonic() + 120  # a worker listens once it has loaded
        while (tmp_path / "server.log").read_text().count("Application startup complete") < 3:
            assert time.monotonic() < deadline, "the writer or a reader did not start"
            time.sleep(0.2)
        barrier = threading.Barrier(connections)

        def client(n: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                barrier.wait()
                for i in range(each):
                    article = sample_articles[(n * each + i) % len(sample_articles)]
                    assert http.get(f"/articles/{article.id}/related").status_code == 200

        threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        per_process = []
        for path in sorted(metrics_dir.glob("counter_*.db")):
            alone = tmp_path / path.stem
            alone.mkdir()
            shutil.copy(path, alone / path.name)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(alone))
            per_process.append(_related_requests(registry))
        writer, *readers = sorted(per_process)
        assert len(readers) == 2 and writer == 0 and all(n > 0 for n in readers), per_process
        assert sum(readers) == connections * each
        for _ in range(4):  # whichever worker answers the scrape
            scrape = httpx.get(f"{base}/metrics").text
            total = sum(
                s.value
                for family in text_string_to_metric_families(scrape)
                for s in family.samples
                if s.name == "recommender_http_requests_total"
                and s.labels["route"] == "/articles/{article_id}/related"
            )
            assert total == connections * each
    finally:
        stop(proc)
