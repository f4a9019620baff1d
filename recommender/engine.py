"""The living index: one object that builds, upserts, deletes, answers, refreshes and compacts.

An `Engine` serves one index directory (`recommender.storage.generations`): the current
generation's store (the source of truth and the log) and its mirror (everything in memory,
derived). It follows the directory, so a rebuilt generation is picked up without a restart, and
it follows the store's log, so a write made by another process (another `serve` worker, a
`recommender index update`) is seen before the next computed answer.

Writes: `upsert` and `delete` run as one SQLite transaction each, holding the store's write lock
(`BEGIN IMMEDIATE`): the articles with their vectors, term counts and entities, a change row
each, the written article's own list (final stage, default parameters, `max_k` items), and, for
an unpublication, every list that held the removed article (who-lists-whom, the `listed` table).
Before it writes, the transaction replays what other processes committed, so it ranks over the
whole index. That is what a write's acknowledgement waits for. The older lists a publication or
correction changes are its second wave, recorded in the same transaction (the `waves` table)
and recomputed right after by the writer's follower (`finish_waves`, within
`follow_seconds`), or on close, or by the next writer when this one was killed:
- the lists that held a written article;
- the lists of the written article's `reverse_neighbours` best-ranked neighbours, so a new
  article of a story enters the lists of the older articles of that story.
A stored list is rewritten only when its items change, so its ETag changes exactly then.

A rebuild (`build_generation`) writes a new generation aside, replays the writes the old one
took while it was built, and switches under the old one's write lock, so no write is lost. A
write that finds the generation switched before it committed is retried on the new one, with
the vectors it already has, at most `WRITE_ATTEMPTS` times; while a new generation cannot be
loaded, writes are refused (`IndexUnavailable`) and the follower backs off (`FollowState`).

Thread safety: reads may come from any thread. Writes in one process are serialized by a lock,
and across processes by SQLite. The mirror's own lock keeps readers from seeing a half-applied
write.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
from tqdm import tqdm

from recommender.articles import Article
from recommender.config import Settings
from recommender.ranking.related import (
    Related,
    RelatedItem,
    RelatedQuery,
    single_threaded_math,
    text_query,
)
from recommender.storage.generations import IndexDir, IndexMissing, Lease, LogMark
from recommender.storage.lexical import LexicalConfig, terms_of
from recommender.storage.mirror import Mirror
from recommender.storage.store import (
    Store,
    StoreDamaged,
    StoredArticle,
    StoreError,
    StoreFull,
    Transaction,
)
from recommender.storage.vectors import VectorIndexConfig
from recommender.text.analyzer import Analyzer
from recommender.text.entities import Entities, article_entities

if TYPE_CHECKING:  # a reader never loads the encoder, so never imports it
    from recommender.embedding.encoder import ArticleEncoder

log = logging.getLogger("recommender.engine")

RETIRE_SECONDS = 5.0
FOLLOW_BACKOFF_CAP_SECONDS = 30.0
"""While following fails, the follower waits twice as long after each failure, up to this."""
WRITE_ATTEMPTS = 3
"""A write that finds the generation switched under it retries on the new one this often."""
Status = Literal["created", "updated", "unchanged", "deleted", "not_found"]


class IndexUnavailable(RuntimeError):
    """An index that cannot be served (missing, old format, another model)."""


class EncoderUnavailable(RuntimeError):
    """A write or a text query needs the encoder, and none is loaded."""


@dataclass(frozen=True)
class WriteResult:
    id: str
    status: Status
    seq: int | None = None


@dataclass(frozen=True)
class Prepared:
    """An article with its derived signals, ready to be written."""

    article: Article
    vector: np.ndarray
    terms: dict[str, int]
    entities: Entities


class _Switched(Exception):
    """The generation changed under a writer: retry on the new one."""


@dataclass
class Generation:
    """One open generation: its store, the lease that keeps it on disk, and its mirror."""

    path: Path
    store: Store
    lease: Lease
    mirror: Mirror
    related: Related
    meta: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.store.close()
        self.lease.release()


class FollowState:
    """The follower's state: how long it waits before its next round, and the problem it
    last reported. It logs once when following starts to fail (or fails another way) and
    once when it recovers, and backs off exponentially (capped) while it fails."""

    def __init__(self, interval: float, cap: float = FOLLOW_BACKOFF_CAP_SECONDS) -> None:
        self.interval = interval
        self.cap = max(cap, interval)
        self.delay = interval
        self.problem: str | None = None

    def step(self, round_: Callable[[], None]) -> None:
        """One round of following; a failure is logged if it is new, and backs off."""
        try:
            round_()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self.problem:
                log.error(
                    "following the index failed (retrying with backoff up to %.0f s): %s",
                    self.cap,
                    problem,
                    exc_info=not isinstance(exc, IndexUnavailable),
                )
            self.problem = problem
            self.delay = min(self.delay * 2, self.cap)
            return
        if self.problem is not None:
            log.info("following the index again (it failed with: %s)", self.problem)
        self.problem = None
        self.delay = self.interval


def _open_generation(path: Path, settings: Settings, index_config: VectorIndexConfig) -> Generation:
    """Open a generation, checked first: a damaged store is refused, never served."""
    lease = Lease(path)
    store: Store | None = None
    try:
        try:
            store = Store(path / Store.FILENAME, settings.store_max_bytes)
            store.check()
            meta = store.meta()
            mirror = Mirror.load(store, int(meta["dim"]), index_config, _lexical_config(meta))
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"{path / Store.FILENAME}: {exc}") from None
    except BaseException:
        if store is not None:
            store.close()
        lease.release()
        raise
    return Generation(path, store, lease, mirror, Related(mirror, settings.ranking), meta)


def _lexical_config(meta: dict[str, Any]) -> LexicalConfig:
    return LexicalConfig.model_validate(meta.get("lexical", {}))


def prepare(
    articles: Sequence[Article], vectors: np.ndarray, config: LexicalConfig
) -> list[Prepared]:
    """Articles with their vectors, term counts and named entities."""
    analyzer = Analyzer(config.analyzer)
    return [
        Prepared(
            a, np.asarray(v, dtype=np.float32), terms_of(a, analyzer, config), article_entities(a)
        )
        for a, v in zip(articles, vectors, strict=True)
    ]


def _same_fields(a: Article, stored: Article) -> bool:
    fields = ("url", "title", "lead", "published", "section", "tags", "source")
    return all(getattr(a, f) == getattr(stored, f) for f in fields)


def _items_json(items: Sequence[RelatedItem]) -> bytes:
    return orjson.dumps([i.record() for i in items])


class Engine:
    """A served index directory; see the module documentation."""

    def __init__(
        self,
        directory: Path,
        settings: Settings,
        encoder: ArticleEncoder | None = None,
        model_id: str | None = None,
        index_config: VectorIndexConfig | None = None,
        generation: Path | None = None,
        refreshes: bool = True,
    ) -> None:
        """Serve the current generation of `directory`, or the given `generation` only.
        `refreshes`: whether this is a writing engine: its follower does the writes' second
        waves and the periodic refresh of the stored lists, and closing it finishes its waves
        (a reader's engine only follows)."""
        single_threaded_math()
        self.directory = IndexDir(directory)
        self.settings = settings
        self.encoder = encoder
        self.expected_model = model_id
        self.index_config = index_config or VectorIndexConfig()
        self._write_lock = threading.RLock()
        self._switch_lock = threading.Lock()
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.last_refresh = time.monotonic()
        self.refreshes = refreshes
        self._pinned = generation is not None
        self._version = self.directory.version()
        self.gen = self._open(generation) if generation is not None else self._open_current()
        self._lookup: tuple[tuple[int, int], Store] | None = None
        self._refused: tuple[int, int] | None = None  # the version of a damaged generation
        self.write_error: str | None = None  # why the last write was refused (a full store)
        self._retired: list[tuple[float, Callable[[], None]]] = []
        self.on_switch: Callable[[], None] | None = None  # called after a generation switch
        if not self._pinned:
            self.directory.collect()  # what a killed build or an old process left behind

    # -- opening and following -------------------------------------------------------------

    def _open_current(self) -> Generation:
        for _ in range(5):
            try:
                path = self.directory.current()
            except IndexMissing as exc:
                raise IndexUnavailable(str(exc)) from None
            try:
                return self._open(path)
            except FileNotFoundError:
                continue  # switched and collected between reading CURRENT and opening it
        raise IndexUnavailable(f"index {self.directory.path} keeps changing; try again")

    def _open(self, path: Path) -> Generation:
        try:
            gen = _open_generation(path, self.settings, self.index_config)
        except StoreDamaged as exc:
            index = self.directory.path
            raise IndexUnavailable(
                f"generation {path.name} of index {index} is damaged and is not served "
                f"({exc}). Recover: `recommender index rebuild --index {index}` reindexes its "
                "articles into a new generation (the lists are computed again); if the "
                f"articles are damaged too, `recommender index build --input FILE --index "
                f"{index} --replace` rebuilds from the export"
            ) from None
        except StoreError as exc:
            if not path.exists():
                raise FileNotFoundError(path) from None
            raise IndexUnavailable(str(exc)) from None
        model = gen.meta.get("model_id")
        if self.expected_model is not None and model != self.expected_model:
            gen.close()
            raise IndexUnavailable(
                f"index {self.directory.path} was built with model '{model}', but the "
                f"configured model is '{self.expected_model}'; rebuild the index or change "
                "the model"
            )
        return gen

    @property
    def model_id(self) -> str:
        return str(self.gen.meta["model_id"])

    def __len__(self) -> int:
        return len(self.gen.mirror)

    def follow(self) -> bool:
        """Switch to a new current generation if there is one. Returns whether it switched.
        Raises `IndexUnavailable` when the new one cannot be loaded (the old one is kept)."""
        version = self.directory.version()
        if self._pinned or version == self._version:
            return False
        with self._switch_lock:
            if version == self._version:
                return False
            new = self._open_current()
            old, self.gen = self.gen, new
            self._version = version
            log.info("switched to generation %s (%d articles)", new.path.name, len(new.mirror))
            self._retire(old.close)
            if self.on_switch is not None:
                self.on_switch()
        return True

    def _retire(self, close: Callable[[], None]) -> None:
        """Close a replaced generation or store only once requests in flight are done with it."""
        self._retired.append((time.monotonic() + RETIRE_SECONDS, close))

    def _close_retired(self, everything: bool = False) -> None:
        now = time.monotonic()
        due = [c for t, c in self._retired if everything or t <= now]
        self._retired = [(t, c) for t, c in self._retired if not (everything or t <= now)]
        for close in due:
            close()
        if due:
            self.directory.collect()

    def sync(self) -> Generation:
        """The generation in use with its mirror caught up with the log. (Switching to a new
        generation is the follower's job, or a writer's: loading one takes a while.)"""
        gen = self.gen
        gen.mirror.catch_up(gen.store)
        return gen

    def poll(self) -> None:
        """One round of the follower: a new generation, the log, retired generations, the
        periodic refresh."""
        self.follow()
        self.sync()
        self._close_retired()
        if self.refreshes:
            self.finish_waves()
        self._periodic_refresh()

    def start_following(self) -> None:
        """A background thread that follows generations and the log, and refreshes lists,
        every `follow_seconds`; while that fails, at growing intervals (`FollowState`)."""
        state = FollowState(self.settings.follow_seconds)

        def loop() -> None:
            while not self._stop.wait(state.delay):
                state.step(self.poll)

        self._follower = threading.Thread(target=loop, name="index-follower", daemon=True)
        self._follower.start()

    def close(self) -> None:
        """Stop following; a writing engine (`refreshes`) first finishes its pending waves."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=5)
        if self.refreshes:
            with contextlib.suppress(StoreError, sqlite3.Error):
                self.finish_waves()
        if self._lookup is not None:
            self._lookup[1].close()
        self._close_retired(everything=True)
        self.gen.close()

    # -- reads -----------------------------------------------------------------------------

    def _lookup_store(self) -> Store:
        """The current generation's store, opened at once after a switch (before the new
        mirror is loaded), so a lookup never serves a list the new generation changed."""
        version = self.directory.version()
        if self._pinned or version == self._version:
            return self.gen.store
        lookup = self._lookup
        if version == self._refused:
            return self.gen.store
        if lookup is None or lookup[0] != version:
            try:
                store = Store(self.directory.current() / Store.FILENAME)
            except (IndexMissing, StoreError, sqlite3.DatabaseError):
                return self.gen.store
            try:
                store.check()
            except StoreDamaged as exc:
                store.close()
                self._refused = version  # the follower refuses it too, and logs why
                log.error("new generation not served: %s", exc)
                return self.gen.store
            if lookup is not None:
                self._retire(lookup[1].close)
            self._lookup = lookup = (version, store)
        return lookup[1]

    def stored_list(self, article_id: str) -> bytes | None:
        """The materialized list of an article (JSON array, `max_k` items) or None."""
        return self._lookup_store().get_list(article_id)

    def article(self, article_id: str) -> Article | None:
        return self._lookup_store().get(article_id)

    def related(self, article_id: str, q: RelatedQuery) -> list[RelatedItem]:
        """Related stories computed now, for any parameters."""
        return self.sync().related.for_id(article_id, q)

    def related_text(self, article: Article, q: RelatedQuery) -> list[RelatedItem]:
        """Related stories of an article that is not indexed (it is encoded)."""
        if self.encoder is None:
            raise EncoderUnavailable("no encoder is loaded for text queries")
        gen = self.sync()
        vector = self.encoder.encode_one(article.title, article.lead, article.body)
        lexical = gen.mirror.lexical
        query = text_query(article, vector, article_entities(article), lexical.query_terms(article))
        return gen.related.for_text(query, q)

    # -- writes ----------------------------------------------------------------------------

    def _prepare(self, articles: Sequence[Article], gen: Generation) -> list[Prepared]:
        if not articles:
            return []
        if self.encoder is None:
            raise EncoderUnavailable("writing articles needs the encoder, and none is loaded")
        vectors = self.encoder.encode_articles(articles)
        return prepare(articles, vectors, _lexical_config(gen.meta))

    def _writing(self, attempt: Callable[[Generation], list[WriteResult]]) -> list[WriteResult]:
        """`attempt` on the current generation, again on the new one when a rebuild switched
        generations before it committed: at most `WRITE_ATTEMPTS` times."""
        with self._write_lock:
            for _ in range(WRITE_ATTEMPTS):
                self.follow()
                try:
                    return attempt(self.sync())
                except _Switched:
                    continue
        raise IndexUnavailable(
            f"index {self.directory.path}: the generation was switched {WRITE_ATTEMPTS} times "
            "during one write (rebuilds in a row?); nothing was written, try again"
        )

    def upsert(self, articles: Sequence[Article]) -> list[WriteResult]:
        """Add or replace articles (one transaction); unchanged ones are not re-encoded, and
        a retry on a new generation reuses the encoding when it encodes the same way."""
        by_id = {a.id: a for a in articles}
        prepared: dict[str, Prepared] = {}
        encoded_for: dict[str, Any] = {}  # the meta of the generation `prepared` was made for

        def attempt(gen: Generation) -> list[WriteResult]:
            nonlocal encoded_for
            if not _same_encoding(encoded_for, gen.meta):
                prepared.clear()
            encoded_for = gen.meta
            stored = gen.store.stored(list(by_id))
            changed = [
                a
                for a in by_id.values()
                if a.id not in prepared
                and (a.id not in stored or stored[a.id].content_hash != a.content_hash())
            ]
            prepared.update((p.article.id, p) for p in self._prepare(changed, gen))
            return self._write(gen, list(by_id.values()), prepared, [])

        return self._writing(attempt)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        """Unpublish articles (one transaction); unknown ids are reported `not_found`."""
        unique = list(dict.fromkeys(ids))
        return self._writing(lambda gen: self._write(gen, [], {}, unique))

    def _write(
        self,
        gen: Generation,
        articles: Sequence[Article],
        prepared: dict[str, Prepared],
        deletes: Sequence[str],
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        mirror = gen.mirror
        with mirror.lock:
            try:
                with gen.store.transaction() as tx:
                    if not self._pinned and (
                        gen is not self.gen or self.directory.version() != self._version
                    ):
                        raise _Switched  # (the follower thread may have switched already)
                    mirror.catch_up(gen.store)
                    stored = gen.store.stored([a.id for a in articles] + list(deletes))
                    written: list[str] = []
                    for article in articles:
                        result = self._put(tx, gen, article, stored.get(article.id), prepared)
                        results.append(result)
                        if result.status != "unchanged":
                            written.append(article.id)
                    removed = []
                    for article_id in deletes:
                        if article_id not in stored:
                            results.append(WriteResult(article_id, "not_found"))
                            continue
                        seq = tx.log("delete", article_id)
                        tx.delete_article(article_id)
                        mirror.remove(article_id)
                        mirror.seq = seq
                        removed.append(article_id)
                        results.append(WriteResult(article_id, "deleted", seq))
                    if written or removed:
                        self._materialize(tx, gen, written, removed)
            except _Switched:
                raise  # found before the mirror was touched
            except StoreFull as exc:
                self.write_error = f"{datetime.now(UTC).isoformat()}: {exc}"
                self._reload_mirror(gen)
                raise
            except BaseException:
                self._reload_mirror(gen)
                raise
        self.write_error = None
        return results

    def _put(
        self,
        tx: Transaction,
        gen: Generation,
        article: Article,
        old: StoredArticle | None,
        prepared: dict[str, Prepared],
    ) -> WriteResult:
        mirror = gen.mirror
        same_text = old is not None and old.content_hash == article.content_hash()
        if old is not None and same_text and _same_fields(article, old.teaser):
            return WriteResult(article.id, "unchanged")
        if old is not None and same_text:
            item = Prepared(article, old.vector, old.terms, old.entities)
            slot = old.slot
        else:
            item = prepared.get(article.id) or self._prepare([article], gen)[0]
            slot = tx.take_slot()
        seq = tx.log("upsert", article.id)
        tx.put_article(article, slot, item.vector, item.terms, item.entities, seq)
        story = article.model_copy(update={"body": ""})
        mirror.add(
            StoredArticle(
                slot, story, item.vector, item.terms, item.entities, article.content_hash()
            )
        )
        mirror.seq = seq
        return WriteResult(article.id, "updated" if old is not None else "created", seq)

    def _reload_mirror(self, gen: Generation) -> None:
        fresh = Mirror.load(
            gen.store, int(gen.meta["dim"]), self.index_config, _lexical_config(gen.meta)
        )
        gen.mirror = fresh
        gen.related = Related(fresh, self.settings.ranking)

    def _default_query(self) -> RelatedQuery:
        return RelatedQuery(k=self.settings.max_k)

    def _store_list(
        self, tx: Transaction, gen: Generation, article_id: str, items: Sequence[RelatedItem]
    ) -> bool:
        data = _items_json(items)
        if tx.get_list(article_id) == data:
            tx.touch_list(article_id)
            return False
        tx.put_list(article_id, data, [i.article.id for i in items], gen.mirror.seq)
        return True

    def _materialize(
        self, tx: Transaction, gen: Generation, written: Sequence[str], removed: Sequence[str]
    ) -> int:
        """Store the written articles' own lists, drop the removed ones' and rewrite every list
        that held a removed article (unpublished means in no list once acknowledged); record
        the rest as the write's second wave (`finish_waves`): the lists that held a written
        article and those of its best-ranked neighbours. Returns how many lists changed."""
        q = self._default_query()
        related = gen.related
        now = tx.lists_holding(list(removed))
        wave = tx.lists_holding(list(written))
        changed = 0
        for article_id in written:
            ranked, items = related.ranked(related.query_of(article_id), q)
            changed += self._store_list(tx, gen, article_id, items)
            wave.update(n.article.id for n in ranked[: self.settings.reverse_neighbours])
        for article_id in removed:
            tx.drop_list(article_id)
        done = set(written) | set(removed)
        for article_id in sorted(now - done):
            if article_id in gen.mirror:
                changed += self._store_list(tx, gen, article_id, related.for_id(article_id, q))
        wave -= done | now
        if wave:
            tx.add_wave(gen.mirror.seq, wave)
        return changed

    def finish_waves(self) -> int:
        """Recompute the lists the pending second waves name (every write's since the last
        call, in one transaction; a wave left by a killed writer too). Returns how many lists
        changed."""
        with self._write_lock:
            gen = self.sync()
            if not gen.store.pending_waves():
                return 0
            q = self._default_query()
            changed = 0
            with gen.mirror.lock, gen.store.transaction() as tx:
                gen.mirror.catch_up(gen.store)
                pending = tx.waves()
                targets = sorted({i for _, ids in pending for i in ids})
                for article_id in targets:
                    if article_id in gen.mirror:
                        items = gen.related.for_id(article_id, q)
                        changed += self._store_list(tx, gen, article_id, items)
                if pending:
                    tx.drop_waves(pending[-1][0])
            return changed

    def refresh(self, limit: int | None = None) -> int:
        """Recompute the `limit` stored lists computed longest ago (all with None)."""
        with self._write_lock:
            gen = self.sync()
            ids = gen.store.oldest_lists(limit if limit is not None else len(gen.mirror) + 1)
            q = self._default_query()
            changed = 0
            with gen.mirror.lock, gen.store.transaction() as tx:
                gen.mirror.catch_up(gen.store)
                for article_id in ids:
                    if article_id in gen.mirror:
                        changed += self._store_list(
                            tx, gen, article_id, gen.related.for_id(article_id, q)
                        )
            return changed

    def _periodic_refresh(self) -> None:
        hours = self.settings.refresh_hours
        if not hours or not self.refreshes:
            return
        elapsed = time.monotonic() - self.last_refresh
        batch = math.floor(len(self.gen.mirror) * elapsed / (hours * 3600))
        if batch >= 1:
            self.last_refresh = time.monotonic()
            self.refresh(batch)

    def list_age_seconds(self) -> float | None:
        """Seconds since the stored list computed longest ago was computed: how far behind the
        periodic refresh is (it keeps this under `refresh_hours`). None without lists."""
        oldest = self._lookup_store().oldest_list_time()
        return (datetime.now(UTC) - oldest).total_seconds() if oldest else None

    def log_lag(self) -> int:
        """Changes committed to the store that this process's mirror has not replayed yet."""
        gen = self.gen
        return max(gen.store.head() - gen.mirror.seq, 0)

    def stats(self) -> dict[str, Any]:
        gen = self.sync()
        return {
            "index": str(self.directory.path),
            "generation": gen.path.name,
            "articles": len(gen.mirror),
            "seq": gen.mirror.seq,
            "vector_index": gen.mirror.vectors.params(),
            **gen.meta,
            **gen.store.summary(),
        }


def _write_rows(store: Store, items: Iterable[Prepared]) -> int:
    count = 0
    with store.transaction() as tx:
        for item in items:
            tx.put_article(item.article, tx.take_slot(), item.vector, item.terms, item.entities, 0)
            count += 1
    return count


def _fill_lists(
    store: Store,
    gen_meta: dict[str, Any],
    settings: Settings,
    index_config: VectorIndexConfig,
    progress: bool,
) -> Mirror:
    mirror = Mirror.load(store, int(gen_meta["dim"]), index_config, _lexical_config(gen_meta))
    related = Related(mirror, settings.ranking)
    q = RelatedQuery(k=settings.max_k)
    with store.transaction() as tx:
        for article_id in tqdm(
            list(mirror.slot_of), desc="related lists", unit="list", disable=not progress
        ):
            items = related.for_id(article_id, q)
            tx.put_list(article_id, _items_json(items), [i.article.id for i in items], 0)
    return mirror


def _same_encoding(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two generations' vectors and term counts come from the same model and settings."""
    return all(a.get(k) == b.get(k) for k in ("model_id", "dim", "encoder", "lexical"))


def _replay(old: Store, start: int, target: Engine) -> int:
    """Apply to `target` the writes `old` took after change `start`; returns the last seq.
    Their vectors and signals are copied, or computed again (target's encoder) when the two
    generations encode differently (a rebuild with another model)."""
    changes = old.changes_since(start)
    if not changes:
        return start
    ids = list(dict.fromkeys(c.id for c in changes))
    rows = old.stored(ids)
    gen = target.gen
    upserts = []
    for article_id in ids:
        row = rows.get(article_id)
        article = old.get(article_id) if row is not None else None
        if row is not None and article is not None:
            upserts.append(Prepared(article, row.vector, row.terms, row.entities))
    if upserts and not _same_encoding(old.meta(), gen.meta):
        upserts = target._prepare([p.article for p in upserts], gen)
    with target._write_lock:
        target._write(
            gen,
            [p.article for p in upserts],
            {p.article.id: p for p in upserts},
            [i for i in ids if i not in rows],
        )
    return changes[-1].seq


def build_generation(
    directory: Path,
    items: Sequence[Prepared],
    meta: dict[str, Any],
    settings: Settings,
    index_config: VectorIndexConfig | None = None,
    progress: bool = True,
    before_switch: Callable[[], None] | None = None,
    since: int | LogMark | None = None,
    fill_lists: Callable[[Store], None] | None = None,
    encoder: ArticleEncoder | None = None,
) -> Path:
    """Write a complete new generation of `items` aside and make it current.

    Writes that the old generation accepted after change `since` (default: its last change
    when this starts) are replayed into the new one, the last ones under the old store's write
    lock, so none is lost at the switch. Replaying a write twice changes nothing. A `LogMark`
    also names the generation it was taken on: if another generation became current since,
    the build stops (its log is another one) instead of replaying the wrong changes.
    `fill_lists` replaces the computation of every stored list (benchmark fixtures use it to
    store lists of synthetic vectors quickly). `encoder` encodes the replayed writes when the
    new generation's model or settings differ from the old one's.
    """
    index_config = index_config or VectorIndexConfig()
    index_dir = IndexDir(directory)
    try:
        old: Store | None = Store(index_dir.current() / Store.FILENAME)
    except (IndexMissing, StoreError):
        old = None
    if isinstance(since, LogMark):
        if old is None or old.path.parent.name != since.generation:
            current = old.path.parent.name if old is not None else "none"
            if old is not None:
                old.close()
            raise IndexUnavailable(
                f"index {directory}: generation {since.generation} was current when this "
                f"build started, now {current} is (another build?); run the build again"
            )
        since = since.seq
    start = since if since is not None else old.head() if old is not None else 0
    meta = {**meta, "created": datetime.now(UTC).isoformat()}
    with index_dir.staging() as tmp:
        store = Store.create(tmp / Store.FILENAME, meta)
        _write_rows(store, items)
        if fill_lists is not None:
            fill_lists(store)
        else:
            _fill_lists(store, store.meta(), settings, index_config, progress)
        store.close()
        final = index_dir.install(tmp)
        if old is None:
            index_dir.switch(final)
        else:
            target = Engine(
                directory, settings, encoder, index_config=index_config, generation=final
            )
            try:
                start = _replay(old, start, target)
                if before_switch is not None:
                    before_switch()
                with old.transaction():
                    _replay(old, start, target)
                    index_dir.switch(final)
            finally:
                target.close()
                old.close()
    index_dir.collect()
    return final


def compact(directory: Path, settings: Settings, progress: bool = True) -> Path:
    """Rewrite the current generation as a new one: live articles only, slots renumbered,
    the vector index rebuilt without tombstones, every list recomputed; then switch."""
    index_dir = IndexDir(directory)
    try:
        store = Store(index_dir.current() / Store.FILENAME)
    except IndexMissing as exc:
        raise IndexUnavailable(str(exc)) from None
    try:
        since = store.head()
        meta = {k: v for k, v in store.meta().items() if k != "next_slot"}
        items = [
            Prepared(article, row.vector, row.terms, row.entities)
            for article, row in store.full_articles()
        ]
    finally:
        store.close()
    return build_generation(directory, items, meta, settings, progress=progress, since=since)
