"""The writer: every write to the generation in use, its stored lists and their refresh.

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
`refresh` recomputes the lists computed longest ago; a writing engine's follower does a share
of them every round (`periodic_refresh`), so every list is recomputed every `refresh_hours`.

A write that finds the generation switched before it committed is retried on the new one, with
the vectors it already has, at most `WRITE_ATTEMPTS` times; while a new generation cannot be
loaded, writes are refused (`IndexUnavailable`).

Thread safety: writes in one process are serialized by the writer's lock (`lock`, re-entrant),
and across processes by SQLite. A write changes the mirror under the mirror's lock, so readers
never see a half-applied write; a write that fails reloads the mirror from the store.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine.follower import Follower
from recommender.engine.generation import (
    Generation,
    IndexUnavailable,
    lexical_config,
    same_encoding,
)
from recommender.ranking.related import Related, RelatedItem, RelatedQuery
from recommender.storage.lexical import LexicalConfig, terms_of
from recommender.storage.mirror import Mirror
from recommender.storage.store import StoredArticle, StoreFull, Transaction
from recommender.text.analyzer import Analyzer
from recommender.text.entities import Entities, article_entities

if TYPE_CHECKING:  # a reader never loads the encoder, so never imports it
    from recommender.embedding.encoder import ArticleEncoder

WRITE_ATTEMPTS = 3
"""A write that finds the generation switched under it retries on the new one this often."""
Status = Literal["created", "updated", "unchanged", "deleted", "not_found"]


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


def items_json(items: Sequence[RelatedItem]) -> bytes:
    """A stored list: the JSON array of its items' records."""
    return orjson.dumps([i.record() for i in items])


def _same_fields(a: Article, stored: Article) -> bool:
    fields = ("url", "title", "lead", "published", "section", "tags", "source")
    return all(getattr(a, f) == getattr(stored, f) for f in fields)


class Writer:
    """The writes to the generation `follower` serves; see the module documentation."""

    def __init__(
        self,
        follower: Follower,
        settings: Settings,
        encoder: ArticleEncoder | None,
        refreshes: bool,
        last_refresh: float,
    ) -> None:
        """`refreshes`: whether the follower's rounds do the second waves and the periodic
        refresh; `last_refresh`: the monotonic time the periodic refresh counts from."""
        self._follower = follower
        self.settings = settings
        self.encoder = encoder
        self.refreshes = refreshes
        self.last_refresh = last_refresh
        self.lock = threading.RLock()
        self.write_error: str | None = None  # why the last write was refused (a full store)

    @property
    def generation(self) -> Generation:
        """The generation in use (the follower's), as it is."""
        return self._follower.gen

    def prepare(self, articles: Sequence[Article], gen: Generation) -> list[Prepared]:
        """`articles` encoded and analysed the way `gen` was built."""
        if not articles:
            return []
        if self.encoder is None:
            raise EncoderUnavailable("writing articles needs the encoder, and none is loaded")
        vectors = self.encoder.encode_articles(articles)
        return prepare(articles, vectors, lexical_config(gen.meta))

    def _writing(self, attempt: Callable[[Generation], list[WriteResult]]) -> list[WriteResult]:
        """`attempt` on the current generation, again on the new one when a rebuild switched
        generations before it committed: at most `WRITE_ATTEMPTS` times."""
        with self.lock:
            for _ in range(WRITE_ATTEMPTS):
                self._follower.follow()
                try:
                    return attempt(self._follower.sync())
                except _Switched:
                    continue
        raise IndexUnavailable(
            f"index {self._follower.directory.path}: the generation was switched "
            f"{WRITE_ATTEMPTS} times during one write (rebuilds in a row?); nothing was "
            "written, try again"
        )

    def upsert(self, articles: Sequence[Article]) -> list[WriteResult]:
        """Add or replace articles (one transaction); unchanged ones are not re-encoded, and
        a retry on a new generation reuses the encoding when it encodes the same way."""
        by_id = {a.id: a for a in articles}
        prepared: dict[str, Prepared] = {}
        encoded_for: dict[str, Any] = {}  # the meta of the generation `prepared` was made for

        def attempt(gen: Generation) -> list[WriteResult]:
            nonlocal encoded_for
            if not same_encoding(encoded_for, gen.meta):
                prepared.clear()
            encoded_for = gen.meta
            stored = gen.store.stored(list(by_id))
            changed = [
                a
                for a in by_id.values()
                if a.id not in prepared
                and (a.id not in stored or stored[a.id].content_hash != a.content_hash())
            ]
            prepared.update((p.article.id, p) for p in self.prepare(changed, gen))
            return self.write(gen, list(by_id.values()), prepared, [])

        return self._writing(attempt)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        """Unpublish articles (one transaction); unknown ids are reported `not_found`."""
        unique = list(dict.fromkeys(ids))
        return self._writing(lambda gen: self.write(gen, [], {}, unique))

    def write(
        self,
        gen: Generation,
        articles: Sequence[Article],
        prepared: dict[str, Prepared],
        deletes: Sequence[str],
    ) -> list[WriteResult]:
        """One transaction on `gen`: put `articles` (with the signals in `prepared`, or
        computed), remove `deletes`, store the lists they change now and record their second
        wave. The caller holds `lock`. Raises `_Switched` when `gen` is no longer current."""
        results: list[WriteResult] = []
        mirror = gen.mirror
        follower = self._follower
        with mirror.lock:
            try:
                with gen.store.transaction() as tx:
                    if not follower.pinned and (
                        gen is not follower.gen or follower.directory.version() != follower.version
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
            item = prepared.get(article.id) or self.prepare([article], gen)[0]
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
            gen.store,
            int(gen.meta["dim"]),
            self._follower.index_config,
            lexical_config(gen.meta),
        )
        gen.mirror = fresh
        gen.related = Related(fresh, self.settings.ranking)

    def _default_query(self) -> RelatedQuery:
        return RelatedQuery(k=self.settings.max_k)

    def _store_list(
        self, tx: Transaction, gen: Generation, article_id: str, items: Sequence[RelatedItem]
    ) -> bool:
        data = items_json(items)
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
        with self.lock:
            gen = self._follower.sync()
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
        with self.lock:
            gen = self._follower.sync()
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

    def periodic_refresh(self) -> None:
        """Refresh the share of the lists due since the last time (`refresh_hours` for all of
        them), oldest first; nothing unless `refreshes`."""
        hours = self.settings.refresh_hours
        if not hours or not self.refreshes:
            return
        elapsed = time.monotonic() - self.last_refresh
        batch = math.floor(len(self._follower.gen.mirror) * elapsed / (hours * 3600))
        if batch >= 1:
            self.last_refresh = time.monotonic()
            self.refresh(batch)
