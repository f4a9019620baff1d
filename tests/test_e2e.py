"""End to end: the real uvicorn server on a free loopback port, queried over HTTP."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_QRELS
from tests.server import running_server

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
    assert len(judged) >= 60
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
