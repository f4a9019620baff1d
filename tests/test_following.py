"""When following fails, and writes that generation switches interrupt: real stores on disk,
synthetic vectors (the retry with the real encoder is in test_live.py)."""

from __future__ import annotations

import logging
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine import (
    WRITE_ATTEMPTS,
    Engine,
    FollowState,
    Generation,
    IndexUnavailable,
    Prepared,
    build_generation,
)
from recommender.storage.generations import IndexDir
from recommender.storage.store import Store
from recommender.text.entities import Entities

META = {"model_id": "model-a", "dim": 16}


def _prepared(n: int) -> list[Prepared]:
    rng = np.random.default_rng(n)
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        Prepared(
            Article(
                id=f"id-{i}",
                title=f"Заглавие {i}",
                body="текст",
                published=datetime(2026, 7, 1 + i, tzinfo=UTC),
            ),
            vectors[i],
            {"заглав": 1, f"т{i}": 1},
            Entities(),
        )
        for i in range(n)
    ]


def _damage(generation: Path) -> None:
    """Random bytes over the pages of the lists table: SQLite's check fails."""
    path = generation / Store.FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'lists'")]
    db.close()
    rng = random.Random(0)
    with path.open("r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * page_size)
            fh.write(rng.randbytes(page_size))


def test_the_follower_backs_off_while_it_cannot_follow_and_logs_each_change_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new current generation that is damaged: the old one is still served, writes are
    refused at once, the follower logs the problem once and waits twice as long after each
    failure up to the cap; once the index is repaired it logs that once and is back to its
    interval."""
    target = tmp_path / "idx"
    settings = Settings(index_dir=target, follow_seconds=0.2)
    first = build_generation(target, _prepared(3), META, settings, progress=False)
    engine = Engine(target, settings)
    try:
        _damage(build_generation(target, _prepared(4), META, settings, progress=False))
        state = FollowState(settings.follow_seconds, cap=1.0)
        delays = []
        with caplog.at_level(logging.INFO, logger="recommender.engine"):
            for _ in range(6):
                state.step(engine.poll)
                delays.append(state.delay)
            assert delays == [0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
            assert engine.gen.path == first and len(engine) == 3
            with pytest.raises(IndexUnavailable, match="is damaged"):
                engine.delete(["id-0"])
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "gen-000002 of index" in errors[0], errors
            caplog.clear()
            IndexDir(target).switch(first)  # the repair: a healthy generation is current
            state.step(engine.poll)
            state.step(engine.poll)
        assert state.delay == settings.follow_seconds and state.problem is None
        assert [r.getMessage()[:28] for r in caplog.records if r.levelno >= logging.INFO] == [
            "switched to generation gen-0",
            "following the index again (i",
        ]
        assert engine.delete(["id-0"])[0].status == "deleted"
    finally:
        engine.close()


def test_a_write_that_a_switch_interrupts_every_time_gives_up_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild switches the generation between every attempt's start and its commit: the
    write is refused after `WRITE_ATTEMPTS` attempts, and nothing of it is written."""
    target = tmp_path / "idx"
    settings = Settings(index_dir=target)
    build_generation(target, _prepared(3), META, settings, progress=False)
    engine = Engine(target, settings)
    real_sync = engine.sync
    builds: list[Path] = []

    def sync_then_rebuild() -> Generation:
        gen = real_sync()
        assert len(builds) < WRITE_ATTEMPTS, "the write was attempted again"
        builds.append(build_generation(target, _prepared(3), META, settings, progress=False))
        return gen

    monkeypatch.setattr(engine, "sync", sync_then_rebuild)
    try:
        with pytest.raises(IndexUnavailable, match=f"switched {WRITE_ATTEMPTS} times"):
            engine.delete(["id-1"])
        assert len(builds) == WRITE_ATTEMPTS
        monkeypatch.setattr(engine, "sync", real_sync)
        assert engine.follow() and engine.gen.path == builds[-1]
        assert engine.article("id-1") is not None and engine.gen.store.head() == 0
    finally:
        engine.close()
