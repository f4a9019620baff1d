"""`recommender index update` beside a running server: both write the one store (the store's
write lock orders them), the server follows the log, and nothing either acknowledged is lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server import start_server, stop

FOLLOW_DEADLINE_S = 60

NEW = [
    {
        "id": "cli-1",
        "title": "Общината отвори нов парк край реката",
        "body": "Новият парк има алеи, детска площадка и пейки по брега на реката.",
        "published": "2026-11-21",
    },
    {
        "id": "cli-2",
        "title": "Читалището събира книги за училищната библиотека",
        "body": "Дарителската кампания продължава до края на месеца във всички квартали.",
        "published": "2026-11-22",
    },
]


def _served(http: httpx.Client, article_id: str) -> dict[str, object] | None:
    r = http.get(f"/articles/{article_id}")
    return r.json() if r.status_code == 200 else None


@pytest.mark.slow
def test_index_update_beside_a_server_is_served_and_loses_no_write(
    sample_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    cache = tmp_path / "cache.sqlite"
    proc, base = start_server(
        index, model_dir, cache, tmp_path / "server.log", RECOMMENDER_API_KEYS="k"
    )
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in NEW), "utf-8")
    env = dict(
        os.environ,
        RECOMMENDER_MODELS_DIR=str(model_dir.parent),
        RECOMMENDER_CACHE_PATH=str(cache),
    )
    auth = {"Authorization": "Bearer k"}
    try:
        command = ["index", "update", "--input", str(feed), "--index", str(index)]
        update = subprocess.Popen(
            [sys.executable, "-m", "recommender.cli", *command, "--no-progress"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with httpx.Client(base_url=base, timeout=60) as http:
            put = http.put(
                "/articles/api-1",
                json={"title": "Нова спирка на автобус 12", "body": "Спирката е до пазара."},
                headers=auth,
            )
            assert put.status_code == 201, put.text
            output, _ = update.communicate(timeout=600)
            assert update.returncode == 0, output.decode()
            deadline = time.monotonic() + FOLLOW_DEADLINE_S
            while time.monotonic() < deadline and _served(http, "cli-2") is None:
                time.sleep(0.2)
            for article in NEW:
                served = _served(http, str(article["id"]))
                assert served is not None and served["title"] == article["title"]
            assert _served(http, "api-1") is not None
            assert http.get("/articles/cli-1/related").status_code == 200
    finally:
        stop(proc)
