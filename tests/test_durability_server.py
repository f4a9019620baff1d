"""Durability with a real `recommender serve` and `kill -9`: a stream of PUTs and DELETEs; its
writer process is killed with SIGKILL at a random moment, then the whole server, 10 times each
(20 kills); after each, every acknowledged write is there, and deleted ones are in no list.
(Builds killed mid-way: `test_durability_build.py`.)"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import Engine
from tests.server import start_server

pytestmark = pytest.mark.slow
ROUNDS = 10
KEY = "durability-key"


def _writer(
    base: str,
    articles: list[Article],
    round_no: int,
    acked: dict[str, str],
    stop: threading.Event,
    first: threading.Event,
) -> None:
    """PUT new articles and DELETE some; record what the server acknowledged. A 503 (the
    writer process is down) is waited out, as its Retry-After asks."""
    rng = random.Random(round_no)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        n = 0
        while not stop.is_set():
            source = articles[rng.randrange(len(articles))]
            article_id = f"r{round_no}-{n}"
            body = source.model_dump(mode="json", exclude={"id"})
            body["title"] = f"{source.title} ({round_no}.{n})"
            try:
                r = http.put(f"/articles/{article_id}", json=body)
                if r.status_code in (200, 201):
                    acked[article_id] = "present"
                    first.set()
                elif r.status_code == 503:
                    time.sleep(0.2)
                gone = f"r{round_no}-{n - 2}"
                if n % 4 == 3 and acked.get(gone) == "present":
                    acked[gone] = "unknown"  # a delete in flight at the kill may have committed
                    if http.delete(f"/articles/{gone}").status_code == 200:
                        acked[gone] = "deleted"
            except httpx.TransportError:
                return
            n += 1


def _writer_pid(base: str) -> int:
    writer = httpx.get(f"{base}/readyz", timeout=5).json()["writer"]
    return int(writer["pid"])


def _new_writer(base: str, killed: int) -> None:
    """Wait until the supervisor's new writer process is ready."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/readyz", timeout=5)
            if r.status_code == 200 and r.json()["writer"]["pid"] != killed:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("no new writer in 120 s")


def test_killed_server_keeps_every_acknowledged_write(
    tmp_path: Path, sample_index: Path, model_dir: Path, sample_articles: list[Article]
) -> None:
    """Each round kills the writer process at a random moment of the stream of writes (the
    supervisor starts another; the readers go on), then, once the new writer has acknowledged
    a write, the whole server (the supervisor, which takes its children with it)."""
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    cache = tmp_path / "cache.sqlite"
    acked: dict[str, str] = {}
    rng = random.Random(0)
    for round_no in range(ROUNDS + 1):
        proc, base = start_server(
            index, model_dir, cache, tmp_path / "server.log", RECOMMENDER_API_KEYS=KEY
        )
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                for article_id, state in acked.items():
                    if state == "unknown":
                        continue
                    r = http.get(f"/articles/{article_id}/related")
                    assert r.status_code == (200 if state == "present" else 404), article_id
                    if state == "deleted":
                        assert http.get(f"/articles/{article_id}").status_code == 404
                if round_no == ROUNDS:
                    break
            stop, first = threading.Event(), threading.Event()
            thread = threading.Thread(
                target=_writer, args=(base, sample_articles, round_no, acked, stop, first)
            )
            thread.start()
            first.wait(timeout=120)  # then a random moment of the stream of writes
            time.sleep(rng.uniform(0.0, 2.0))
            killed = _writer_pid(base)
            os.kill(killed, signal.SIGKILL)
            first.clear()
            _new_writer(base, killed)
            first.wait(timeout=120)  # a write acknowledged by the new writer
            time.sleep(rng.uniform(0.0, 2.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            stop.set()
            thread.join(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sum(s != "unknown" for s in acked.values()) >= 2 * ROUNDS  # acked before the kills
    engine = Engine(index, Settings(index_dir=index))
    try:
        for article_id, state in acked.items():
            if state == "unknown":
                continue
            assert (article_id in engine) is (state == "present")
            listed = [
                orjson.loads(engine.stored_list(a) or b"[]") for a in engine.ids()
            ]
            if state == "deleted":
                assert all(article_id not in {i["id"] for i in items} for items in listed)
    finally:
        engine.close()
