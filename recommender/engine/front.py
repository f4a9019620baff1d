"""The engine's front: `Engine`, the one object callers hold for a served index directory.

It puts the parts together: a `Follower` (the generation in use, kept current) and a `Writer`
(the writes, the second waves, the refresh), and answers reads itself: the stored lists and
articles (from the follower's lookup store), lists computed now for any parameters (after the
log is replayed), and what the readiness, metrics and statistics report. Callers go through
these methods only; what reads an internal signal on purpose takes a `ReadView`.

Thread safety: reads may come from any thread; writes are serialized by the writer's lock in
one process and by SQLite across processes; the follower's background thread
(`start_following`) runs `poll`. `close` stops that thread before it closes anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recommender.articles import Article
from recommender.config import Settings
from recommender.engine.follower import Follower
from recommender.engine.generation import Generation, ReadView
from recommender.engine.writer import EncoderUnavailable, Writer, WriteResult
from recommender.ranking.related import (
    RelatedItem,
    RelatedQuery,
    single_threaded_math,
    text_query,
)
from recommender.storage.generations import IndexDir
from recommender.storage.store import StoreError
from recommender.storage.vectors import VectorIndexConfig
from recommender.text.entities import article_entities

if TYPE_CHECKING:  # a reader never loads the encoder, so never imports it
    from recommender.embedding.encoder import ArticleEncoder


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
        started = time.monotonic()
        self._follower = Follower(
            self.directory, settings, model_id, index_config or VectorIndexConfig(), generation
        )
        self._writer = Writer(self._follower, settings, encoder, refreshes, started)

    # -- the generation in use ---------------------------------------------------------------

    @property
    def encoder(self) -> ArticleEncoder | None:
        """The encoder writes and text queries use (None in a reader)."""
        return self._writer.encoder

    @property
    def model_id(self) -> str:
        return str(self._follower.gen.meta["model_id"])

    @property
    def generation_path(self) -> Path:
        """The directory of the generation in use."""
        return self._follower.gen.path

    @property
    def meta(self) -> dict[str, Any]:
        """A copy of the generation's meta (model, dimension, lexical settings, ...)."""
        return dict(self._follower.gen.meta)

    @property
    def seq(self) -> int:
        """The last change of the log this process's mirror has applied."""
        return self._follower.gen.mirror.seq

    @property
    def write_error(self) -> str | None:
        """Why the last write was refused (a full store, with its time), None once one
        succeeds."""
        return self._writer.write_error

    @property
    def on_switch(self) -> Callable[[], None] | None:
        """Called after every switch to a new generation (the server freezes its mirror)."""
        return self._follower.on_switch

    @on_switch.setter
    def on_switch(self, hook: Callable[[], None] | None) -> None:
        self._follower.on_switch = hook

    def __len__(self) -> int:
        return len(self._follower.gen.mirror)

    def __contains__(self, article_id: object) -> bool:
        """Whether this process's mirror holds the article (no catch-up with the log)."""
        return article_id in self._follower.gen.mirror

    def ids(self) -> list[str]:
        """The ids of the articles this process's mirror holds (a copy, in no set order)."""
        return list(self._follower.gen.mirror.slot_of)

    def teasers(self) -> list[Article]:
        """The live articles this process's mirror holds, without their bodies, in slot
        order."""
        return [s for s in self._follower.gen.mirror.teasers if s is not None]

    def read_view(self) -> ReadView:
        """The mirror and the store of the generation in use, to read directly (see
        `ReadView`)."""
        gen = self._follower.gen
        return ReadView(gen.mirror, gen.store)

    def waves_pending(self) -> int:
        """Acknowledged writes whose second wave is not done yet (from the store)."""
        return self._follower.gen.store.pending_waves()

    # -- following -------------------------------------------------------------------------

    def follow(self) -> bool:
        """Switch to a new current generation if there is one. Returns whether it switched.
        Raises `IndexUnavailable` when the new one cannot be loaded (the old one is kept)."""
        return self._follower.follow()

    def sync(self) -> Generation:
        """The generation in use with its mirror caught up with the log. (Switching to a new
        generation is the follower's job, or a writer's: loading one takes a while.)"""
        return self._follower.sync()

    def poll(self) -> None:
        """One round of the follower: a new generation, the log, retired generations, the
        periodic refresh."""
        self.follow()
        self.sync()
        self._follower.close_retired()
        if self._writer.refreshes:
            self._writer.finish_waves()
        self._writer.periodic_refresh()

    def start_following(self) -> None:
        """A background thread that follows generations and the log, and refreshes lists,
        every `follow_seconds`; while that fails, at growing intervals (`FollowState`)."""
        self._follower.start(self.poll)

    def close(self) -> None:
        """Stop following; a writing engine (`refreshes`) first finishes its pending waves."""
        self._follower.stop()
        if self._writer.refreshes:
            with contextlib.suppress(StoreError, sqlite3.Error):
                self._writer.finish_waves()
        self._follower.close()

    # -- reads -----------------------------------------------------------------------------

    def stored_list(self, article_id: str) -> bytes | None:
        """The materialized list of an article (JSON array, `max_k` items) or None."""
        return self._follower.lookup_store().get_list(article_id)

    def article(self, article_id: str) -> Article | None:
        return self._follower.lookup_store().get(article_id)

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

    def list_age_seconds(self) -> float | None:
        """Seconds since the stored list computed longest ago was computed: how far behind the
        periodic refresh is (it keeps this under `refresh_hours`). None without lists."""
        oldest = self._follower.lookup_store().oldest_list_time()
        return (datetime.now(UTC) - oldest).total_seconds() if oldest else None

    def log_lag(self) -> int:
        """Changes committed to the store that this process's mirror has not replayed yet."""
        gen = self._follower.gen
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

    # -- writes ----------------------------------------------------------------------------

    def upsert(self, articles: Sequence[Article]) -> list[WriteResult]:
        """Add or replace articles (one transaction); unchanged ones are not re-encoded, and
        a retry on a new generation reuses the encoding when it encodes the same way."""
        return self._writer.upsert(articles)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        """Unpublish articles (one transaction); unknown ids are reported `not_found`."""
        return self._writer.delete(ids)

    def finish_waves(self) -> int:
        """Recompute the lists the pending second waves name (every write's since the last
        call, in one transaction; a wave left by a killed writer too). Returns how many lists
        changed."""
        return self._writer.finish_waves()

    def refresh(self, limit: int | None = None) -> int:
        """Recompute the `limit` stored lists computed longest ago (all with None)."""
        return self._writer.refresh(limit)
