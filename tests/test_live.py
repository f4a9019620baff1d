"""The living index: publish, correct, unpublish and rebuild, with the stored lists kept right.

Real parts throughout: the real model (through the session's encoder), real SQLite stores on
disk, two engines standing for two serving processes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import (
    RETIRE_SECONDS,
    Engine,
    IndexUnavailable,
    build_generation,
    prepare,
)
from recommender.indexing import WouldUnpublish, build_index, index_meta, rebuild_index
from recommender.ranking.related import RelatedQuery
from recommender.storage.generations import IndexDir
from recommender.storage.lexical import LexicalConfig
from recommender.storage.store import Store

NEW = "a1004"  # the latest article of a four-article story (a1001-a1004)
OLDER = ["a1001", "a1002", "a1003"]


@pytest.fixture(scope="module")
def base_index(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: ArticleEncoder,
    sample_articles: list[Article],
    settings_factory,  # type: ignore[no-untyped-def]
) -> Path:
    """The sample corpus without NEW, built once; each test works on a copy."""
    source = tmp_path_factory.mktemp("live") / "input.jsonl"
    source.write_bytes(
        b"".join(
            orjson.dumps(a.model_dump(mode="json")) + b"\n" for a in sample_articles if a.id != NEW
        )
    )
    directory = source.parent / "base"
    build_index(source, directory, encoder, settings_factory(), progress=False)
    return directory


@pytest.fixture()
def settings(tmp_path: Path, base_index: Path, settings_factory) -> Settings:  # type: ignore[no-untyped-def]
    shutil.copytree(base_index, tmp_path / "idx")
    s: Settings = settings_factory(index_dir=tmp_path / "idx")
    return s


@pytest.fixture()
def engine(settings: Settings, encoder: ArticleEncoder) -> Iterator[Engine]:
    e = Engine(settings.index_dir, settings, encoder)
    yield e
    e.close()


def _stored_ids(engine: Engine, article_id: str) -> list[str]:
    return [i["id"] for i in orjson.loads(engine.stored_list(article_id) or b"[]")]


def _by_id(articles: list[Article], article_id: str) -> Article:
    return next(a for a in articles if a.id == article_id)


def test_publish_answers_at_once_and_enters_the_older_lists(
    engine: Engine, sample_articles: list[Article]
) -> None:
    assert engine.stored_list(NEW) is None
    (result,) = engine.upsert([_by_id(sample_articles, NEW)])
    assert result.status == "created" and result.seq is not None
    own = _stored_ids(engine, NEW)
    assert len(own) == engine.settings.max_k and set(OLDER) & set(own)
    # acknowledged with its own list; the older lists are the second wave, pending until done
    assert engine.waves_pending() == 1
    assert not all(NEW in _stored_ids(engine, older) for older in OLDER)
    assert engine.finish_waves() >= len(OLDER)
    assert engine.waves_pending() == 0
    assert all(NEW in _stored_ids(engine, older) for older in OLDER)
    # every stored list that would show the new article (a full recomputation) shows it
    default = RelatedQuery(k=engine.settings.max_k)
    for article_id in engine.ids():
        fresh = [i.article.id for i in engine.related(article_id, default)]
        if NEW in fresh[:5]:
            assert NEW in _stored_ids(engine, article_id), article_id


def test_unchanged_is_not_rewritten_and_a_metadata_fix_is_not_reencoded(
    engine: Engine, sample_articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine.encoder is not None
    encoded: list[str] = []
    real = engine.encoder.encode_articles

    def counting(articles, progress=False):  # type: ignore[no-untyped-def]
        encoded.extend(a.id for a in articles)
        return real(articles, progress)

    monkeypatch.setattr(engine.encoder, "encode_articles", counting)
    article = _by_id(sample_articles, "a1003")
    holders = [a for a in engine.ids() if "a1003" in _stored_ids(engine, a)]
    assert holders
    seq = engine.seq
    assert [r.status for r in engine.upsert([article])] == ["unchanged"]
    assert engine.seq == seq
    fixed = article.model_copy(update={"url": "https://example.bg/fixed"})
    (result,) = engine.upsert([fixed])
    assert result.status == "updated" and encoded == []
    engine.finish_waves()  # the lists that show the article are its second wave
    shown = orjson.loads(engine.stored_list(holders[0]) or b"[]")
    assert next(i for i in shown if i["id"] == "a1003")["url"] == "https://example.bg/fixed"
    corrected = article.model_copy(update={"title": article.title + " (обновена)"})
    assert engine.upsert([corrected])[0].status == "updated" and encoded == ["a1003"]


def test_a_write_a_rebuild_switches_under_goes_to_the_new_generation_encoded_once(
    engine: Engine,
    settings: Settings,
    sample_articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebuild (same model) switches generations while a write is encoding: the write is
    retried on the new generation with the vectors it has, and lands there."""
    assert engine.encoder is not None
    real = engine.encoder.encode_articles
    lexical = LexicalConfig()
    served = [a for a in sample_articles if a.id != NEW]
    items = prepare(served, real(served), lexical)
    meta = index_meta(engine.encoder, lexical)
    encoded: list[str] = []
    rebuilt: list[Path] = []

    def encode_while_a_rebuild_switches(articles, progress=False):  # type: ignore[no-untyped-def]
        encoded.extend(a.id for a in articles)
        if not rebuilt:
            rebuilt.append(build_generation(settings.index_dir, items, meta, settings, False))
        return real(articles, progress)

    monkeypatch.setattr(engine.encoder, "encode_articles", encode_while_a_rebuild_switches)
    old = engine.generation_path
    (result,) = engine.upsert([_by_id(sample_articles, NEW)])
    assert result.status == "created" and encoded == [NEW]
    assert rebuilt and engine.generation_path == rebuilt[0] != old
    assert NEW in engine and engine.read_view().store.head() == result.seq
    engine.finish_waves()  # on the new generation, where the write went
    assert all(NEW in _stored_ids(engine, older) for older in OLDER)


def test_unpublish_leaves_every_list_and_lists_are_refilled(engine: Engine) -> None:
    holders = [a for a in engine.ids() if "a1003" in _stored_ids(engine, a)]
    assert len(holders) >= 2
    (result,) = engine.delete(["a1003"])
    assert result.status == "deleted"
    assert engine.delete(["a1003"])[0].status == "not_found"
    assert engine.stored_list("a1003") is None and engine.article("a1003") is None
    for article_id in engine.ids():
        ids = _stored_ids(engine, article_id)
        assert "a1003" not in ids
        assert len(ids) == engine.settings.max_k


def test_two_new_articles_sharing_a_new_name_are_linked_by_it(engine: Engine) -> None:
    name = "Зоравинков"
    assert not any(name in e.names.values() for e in engine.read_view().mirror.entities)
    first = Article(
        id="new-1",
        title=f"Кметът на Белоградчик {name} подаде оставка",
        body=f"Кметът {name} обяви оставката си на извънредна сесия на общинския съвет. "
        "Общината ще бъде управлявана временно от заместник-кмет.",
        published="2026-11-20T10:00:00+02:00",
        section="politics",
    )
    second = Article(
        id="new-2",
        title="Общинският съвет прие оставката на градоначалника",
        body=f"Съветниците гласуваха оставката на {name}. Предстоят частични избори, "
        f"заяви {name} пред журналисти.",
        published="2026-11-21T09:00:00+02:00",
        section="politics",
    )
    engine.upsert([first])
    engine.upsert([second])
    # ranked, not the box: the default box sets aside reports of the article's own happening
    for article, other in (("new-2", "new-1"), ("new-1", "new-2")):
        ranked = engine.related(article, RelatedQuery(k=5, stage="ranked"))
        assert ranked[0].article.id == other and name in ranked[0].reason, article


def test_another_process_follows_the_log(
    engine: Engine, settings: Settings, sample_articles: list[Article]
) -> None:
    reader = Engine(settings.index_dir, settings)
    try:
        before = [i.article.id for i in reader.related("a1001", RelatedQuery(k=20))]
        assert NEW not in before
        engine.upsert([_by_id(sample_articles, NEW)])
        after = [i.article.id for i in reader.related("a1001", RelatedQuery(k=20))]
        assert NEW in after and reader.seq == engine.seq
        engine.delete([NEW])
        again = reader.related("a1001", RelatedQuery(k=20, stage="ranked"))
        assert NEW not in [i.article.id for i in again]
    finally:
        reader.close()


def test_a_rebuild_keeps_the_writes_made_while_it_ran(
    engine: Engine, settings: Settings, sample_articles: list[Article], encoder: ArticleEncoder
) -> None:
    subset = [a for a in sample_articles if a.id not in (NEW, "a1003")][:60]
    lexical = LexicalConfig()
    items = prepare(subset, encoder.encode_articles(subset), lexical)
    meta = index_meta(encoder, lexical)

    def write_during_build() -> None:
        engine.upsert([_by_id(sample_articles, NEW)])
        engine.delete(["a1001"])

    generation = build_generation(
        settings.index_dir,
        items,
        meta,
        settings,
        progress=False,
        since=engine.seq,
        before_switch=write_during_build,
    )
    assert engine.follow() and engine.generation_path == generation
    assert NEW in engine and "a1001" not in engine
    assert len(engine) == len(subset)  # a1001 was in the subset and is deleted, NEW added
    assert engine.stored_list(NEW) is not None
    engine.close()
    assert sorted(p.name for p in settings.index_dir.iterdir()) == ["CURRENT", generation.name]


def test_a_build_from_a_file_that_lacks_published_articles_is_refused_without_replace(
    engine: Engine,
    settings: Settings,
    base_index: Path,
    encoder: ArticleEncoder,
    sample_articles: list[Article],
) -> None:
    """An article published through the API (NEW) is not in the exported file: the build says
    how many served articles it would drop and changes nothing; --replace drops them."""
    engine.upsert([_by_id(sample_articles, NEW)])
    before = IndexDir(settings.index_dir).current()
    export = base_index.parent / "input.jsonl"
    with pytest.raises(
        WouldUnpublish, match=f"1 articles served by .* are not in the input \\({NEW}\\)"
    ):
        build_index(export, settings.index_dir, encoder, settings, progress=False)
    assert IndexDir(settings.index_dir).current() == before and engine.article(NEW) is not None
    report = build_index(
        export, settings.index_dir, encoder, settings, progress=False, replace=True
    )
    assert report.dropped == 1 and report.summary()["dropped"] == 1
    assert engine.follow() and NEW not in engine


def test_a_rebuild_from_the_store_keeps_everything_served_and_the_writes_meanwhile(
    engine: Engine, settings: Settings, encoder: ArticleEncoder, sample_articles: list[Article]
) -> None:
    engine.upsert([_by_id(sample_articles, NEW)])
    engine.delete(["a1001"])
    late = sample_articles[5].model_copy(update={"id": "late-1", "title": "Късна новина"})

    def write_during_rebuild() -> None:
        engine.upsert([late])
        engine.delete(["a1002"])

    served = set(engine.ids())
    generation = rebuild_index(
        settings.index_dir, encoder, settings, progress=False, before_switch=write_during_rebuild
    )
    assert engine.follow() and engine.generation_path == generation
    mirror = engine.read_view().mirror
    assert set(mirror.slot_of) == (served | {"late-1"}) - {"a1002"}
    # slots renumbered: a1001's tombstone is gone; a1002, deleted meanwhile, left the only one
    assert max(mirror.slot_of.values()) == len(mirror) == len(served)
    for article_id in mirror.slot_of:
        assert not {"a1001", "a1002"} & set(_stored_ids(engine, article_id)), article_id
    assert engine.article("late-1") == late and engine.stored_list(NEW) is not None


def test_a_serving_engine_follows_a_rebuild_on_its_own(
    settings: Settings, sample_articles: list[Article], encoder: ArticleEncoder
) -> None:
    """The follower thread switches to a new generation (computed answers and /readyz come
    from it) and the old generation is removed once released, with no write to trigger it."""
    served = Engine(settings.index_dir, settings.model_copy(update={"follow_seconds": 0.05}))
    switched: list[Path] = []
    served.on_switch = lambda: switched.append(served.generation_path)
    served.start_following()
    try:
        old = served.generation_path
        subset = [a for a in sample_articles if a.id != NEW][:30]
        lexical = LexicalConfig()
        meta = {"model_id": served.model_id, "dim": encoder.dim, "lexical": lexical.model_dump()}
        items = prepare(subset, encoder.encode_articles(subset), lexical)
        generation = build_generation(settings.index_dir, items, meta, settings, progress=False)
        deadline = time.monotonic() + 20
        while served.generation_path != generation and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.generation_path == generation and len(served) == len(subset)
        assert switched == [generation]  # the server's hook (it freezes the new mirror)
        assert old.exists()  # kept while requests in flight may still read it
        deadline = time.monotonic() + RETIRE_SECONDS + 10
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not old.exists()
    finally:
        served.close()


def _age_every_list(settings: Settings, hours: float) -> None:
    """Pretend every stored list was computed `hours` ago (what a stalled refresh leaves)."""
    store = Store(IndexDir(settings.index_dir).current() / Store.FILENAME)
    moment = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    with store.transaction() as tx:
        tx.db.execute("UPDATE lists SET computed_at = ?", (moment,))
    store.close()


def test_the_refresh_lag_is_the_oldest_list_and_the_periodic_refresh_takes_its_share(
    settings: Settings, encoder: ArticleEncoder
) -> None:
    _age_every_list(settings, 30)
    engine = Engine(settings.index_dir, settings.model_copy(update={"refresh_hours": 24}), encoder)
    try:
        age = engine.list_age_seconds()
        assert age is not None and 30 * 3600 <= age < 30 * 3600 + 60
        lists = len(engine)
        # half the refresh period has passed: half of the lists are due, the oldest first
        engine._writer.last_refresh = time.monotonic() - 12 * 3600  # (internal on purpose)
        engine._writer.periodic_refresh()
        fresh = engine.read_view().store.db.execute(
            "SELECT COUNT(*) FROM lists WHERE computed_at > ?",
            ((datetime.now(UTC) - timedelta(minutes=1)).isoformat(),),
        ).fetchone()[0]
        assert fresh == lists // 2
        assert (engine.list_age_seconds() or 0) >= 30 * 3600
        engine.refresh()
        assert (engine.list_age_seconds() or 1e9) < 60
    finally:
        engine.close()


def test_the_log_lag_counts_the_changes_a_process_has_not_replayed(
    engine: Engine, settings: Settings, sample_articles: list[Article]
) -> None:
    reader = Engine(settings.index_dir, settings)
    try:
        assert reader.log_lag() == 0
        engine.upsert([_by_id(sample_articles, NEW)])
        engine.delete(["a1001"])
        assert reader.log_lag() == 2
        reader.sync()
        assert reader.log_lag() == 0
    finally:
        reader.close()


def test_a_damaged_store_is_refused_naming_it_and_index_rebuild_recovers(
    settings: Settings, encoder: ArticleEncoder
) -> None:
    """64 KiB of random bytes over pages of the lists table of a copy: the engine (and so the
    server: /readyz answers 503 with the message) refuses it, naming the generation and the
    recovery; `index rebuild` then reindexes its articles into a healthy generation."""
    generation = IndexDir(settings.index_dir).current()
    path = generation / Store.FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'lists'")]
    articles = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    db.close()
    rng = random.Random(0)
    with path.open("r+b") as fh:
        for page in rng.sample(pages, 65536 // page_size):
            fh.seek((page - 1) * page_size)
            fh.write(rng.randbytes(page_size))
    with pytest.raises(
        IndexUnavailable,
        match=rf"generation {generation.name} of index .* is damaged .*"
        rf"`recommender index rebuild --index {settings.index_dir}`",
    ):
        Engine(settings.index_dir, settings)
    rebuilt = rebuild_index(settings.index_dir, encoder, settings, progress=False)
    engine = Engine(settings.index_dir, settings)
    try:
        assert engine.generation_path == rebuilt and len(engine) == articles
        assert all(engine.stored_list(a) is not None for a in engine.ids())
    finally:
        engine.close()


KILLED_AFTER_THE_ACKNOWLEDGEMENT = """
import os, signal, sys
from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine

settings = Settings(index_dir=sys.argv[1])
engine = Engine(settings.index_dir, settings, ArticleEncoder.from_settings(settings))
(result,) = engine.upsert([Article.model_validate_json(sys.stdin.read())])
print(result.status, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # acknowledged, its second wave not done
"""


def test_a_writer_killed_before_its_second_wave_leaves_it_to_the_next_writer(
    settings: Settings, encoder: ArticleEncoder, sample_articles: list[Article]
) -> None:
    """A real process publishes NEW and is killed with SIGKILL as soon as the write returns:
    the older lists do not show NEW yet, the wave is pending in the store, and the next writer
    to open the index finishes it (its follower does, or closing it does)."""
    env = dict(os.environ, RECOMMENDER_CACHE_PATH=str(settings.cache_path))
    env["RECOMMENDER_MODELS_DIR"] = str(settings.models_dir)
    run = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_THE_ACKNOWLEDGEMENT, str(settings.index_dir)],
        input=_by_id(sample_articles, NEW).model_dump_json(),
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == -signal.SIGKILL and run.stdout.split() == ["created"], run.stderr
    reader = Engine(settings.index_dir, settings, refreshes=False)
    try:
        assert reader.waves_pending() == 1
        assert not all(NEW in _stored_ids(reader, older) for older in OLDER)
        writer = Engine(settings.index_dir, settings, encoder)
        writer.start_following()
        deadline = time.monotonic() + 30
        while reader.waves_pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        writer.close()
        assert reader.waves_pending() == 0
        assert all(NEW in _stored_ids(reader, older) for older in OLDER)
    finally:
        reader.close()
