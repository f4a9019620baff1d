"""Durability of rebuilds with real processes and `kill -9`:

- A real `recommender index build` is killed at a random moment of each tenth of its run (10
  kills, spread over the whole run where 20 at random moments might cluster); the index then
  always loads (the old or the new generation, never a missing one), and the next open
  removes what the killed build left.
- A rebuild beside a running server carries over every write acknowledged while it runs.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import Engine
from recommender.storage.generations import IndexDir
from tests.server import build_command, start_server, stop

pytestmark = pytest.mark.slow
BUILD_KILLS = 10
KEY = "durability-key"


def test_killed_reindex_never_leaves_the_index_missing(
    tmp_path: Path, sample_index: Path, model_dir: Path, sample_articles: list[Article]
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    small = tmp_path / "small.jsonl"
    small.write_bytes(
        b"".join(orjson.dumps(a.model_dump(mode="json")) + b"\n" for a in sample_articles[:40])
    )
    command, env = build_command(small, index, model_dir, tmp_path / "cache.sqlite", "--replace")
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)  # warms the cache
    duration = time.monotonic() - started
    sizes = {len(sample_articles), 40}
    rng = random.Random(1)
    for tenth in range(BUILD_KILLS):  # one kill at a random moment of each tenth of the run
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep((tenth + rng.random()) / BUILD_KILLS * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        engine = Engine(index, Settings(index_dir=index))  # opening collects what was left
        try:
            assert len(engine) in sizes
            assert engine.stored_list(sample_articles[0].id) is not None
        finally:
            engine.close()
        names = sorted(p.name for p in index.iterdir())
        assert names == ["CURRENT", IndexDir(index).current().name], names


def test_a_rebuild_carries_over_every_write_acknowledged_while_it_runs(
    tmp_path: Path,
    sample_index: Path,
    model_dir: Path,
    sample_articles: list[Article],
    embedding_cache: Path,
) -> None:
    """A real server takes a PUT every 0.2 s from the moment a real `index build` of the same
    articles starts until it has switched: every write acknowledged after the change the build
    says it carries over from is served afterwards, those of the build's first seconds (while
    it loads its model) too."""
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(
        b"".join(orjson.dumps(a.model_dump(mode="json")) + b"\n" for a in sample_articles)
    )
    cache = embedding_cache  # the sample's vectors
    proc, base = start_server(
        index, model_dir, cache, tmp_path / "server.log", RECOMMENDER_API_KEYS=KEY
    )
    try:
        old = IndexDir(index).current().name
        # --replace: a write acknowledged before the build noted its position is dropped
        command, env = build_command(corpus, index, model_dir, cache, "--replace")
        build = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        acked: list[tuple[int, str]] = []
        body = sample_articles[0].model_dump(mode="json", exclude={"id"})
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
            n = 0
            while build.poll() is None:
                article_id = f"during-{n}"
                r = http.put(f"/articles/{article_id}", json={**body, "title": f"Сграда {n}"})
                if r.status_code in (200, 201):
                    acked.append((r.json()["seq"], article_id))
                n += 1
                time.sleep(0.2)
            _, stderr = build.communicate()
            text = stderr.decode(errors="replace")
            assert build.returncode == 0, text
            mark = re.search(rf"carrying over the writes {old} takes after change (\d+)", text)
            assert mark is not None, text
            deadline = time.monotonic() + 30
            while http.get("/readyz").json()["generation"] == old:
                assert time.monotonic() < deadline, "the server did not switch"
                time.sleep(0.2)
            during = [i for seq, i in acked if seq > int(mark.group(1))]
            assert len(during) >= 3
            lost = [i for i in during if http.get(f"/articles/{i}").status_code != 200]
            assert not lost, f"{len(lost)} of {len(during)} acknowledged writes lost: {lost}"
            assert all(http.get(f"/articles/{i}/related").status_code == 200 for i in during)
    finally:
        stop(proc)
