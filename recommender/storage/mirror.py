"""The mirror: everything in memory that is derived from a store, kept up to date from its log.

It holds, by slot: the teasers (the article fields without the body, what a box shows), the
vector index (`recommender.storage.vectors`), the lexical index with live document frequencies
(`recommender.storage.lexical`), the named entities and their document frequencies, and the
arrays the filters use. It is built from the store (`Mirror.load`) and follows the log
(`catch_up` replays every change after `seq`), so every process serving one store sees every
write, whichever process made it.

Thread safety: `lock` (re-entrant) is held by whoever changes the mirror and by every search,
so a reader never sees a half-applied write and FAISS is never searched while it changes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from recommender.articles import Article
from recommender.storage.lexical import LexicalConfig, LexicalIndex
from recommender.storage.store import Store, StoredArticle
from recommender.storage.vectors import VectorIndex, VectorIndexConfig
from recommender.text.entities import Entities, EntityStats

NO_CODE = -1
NO_IDS = np.zeros(0, dtype=np.int64)


class _Codes:
    """Small integer codes for a categorical field, by slot, for fast filter masks."""

    def __init__(self) -> None:
        self.code_of: dict[str, int] = {}
        self.codes = np.zeros(0, dtype=np.int32)

    def set(self, slot: int, value: str | None) -> None:
        if len(self.codes) <= slot:
            grow = max(slot + 1, 2 * len(self.codes)) - len(self.codes)
            self.codes = np.concatenate([self.codes, np.full(grow, NO_CODE, dtype=np.int32)])
        self.codes[slot] = self.code_of.setdefault(value, len(self.code_of)) if value else NO_CODE

    def mask(self, value: str, size: int) -> np.ndarray:
        code = self.code_of.get(value)
        codes = self.codes[:size]
        if code is None:
            return np.zeros(size, dtype=bool)
        out = np.zeros(size, dtype=bool)
        out[: len(codes)] = codes == code
        return out


def _timestamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else math.nan


class Mirror:
    """Derived in-memory state of one store, by slot."""

    def __init__(
        self,
        dim: int,
        index_config: VectorIndexConfig | None = None,
        lexical_config: LexicalConfig | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.seq = 0
        self.slot_of: dict[str, int] = {}
        self.teasers: list[Article | None] = []
        self.entities: list[Entities] = []
        self.entity_ids: list[np.ndarray] = []
        self.vectors = VectorIndex(dim, index_config)
        self.lexical = LexicalIndex(lexical_config)
        self.entity_stats = EntityStats()
        self._published = np.zeros(0, dtype=np.float64)
        self._sections = _Codes()
        self._sources = _Codes()

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self.slot_of

    @property
    def size(self) -> int:
        """Slots in use so far (live or removed)."""
        return len(self.teasers)

    @classmethod
    def load(
        cls,
        store: Store,
        dim: int,
        index_config: VectorIndexConfig | None = None,
        lexical_config: LexicalConfig | None = None,
    ) -> Mirror:
        """Build the mirror of a store as of its last change."""
        mirror = cls(dim, index_config, lexical_config)
        with mirror.lock:
            seq = store.head()
            rows = list(store.all_articles())
            for row in rows:
                mirror._place(row)
                mirror.lexical.add(row.slot, row.terms)
            mirror.lexical.merge()
            slots = np.array([r.slot for r in rows], dtype=np.int64)
            vectors = np.stack([r.vector for r in rows]) if rows else np.zeros((0, dim))
            mirror.vectors = VectorIndex.build(slots, vectors, index_config)
            mirror.seq = seq
        return mirror

    def _place(self, row: StoredArticle) -> None:
        slot = row.slot
        if len(self.teasers) <= slot:
            grow = slot + 1 - len(self.teasers)
            self.teasers.extend([None] * grow)
            self.entities.extend([Entities()] * grow)
            self.entity_ids.extend([NO_IDS] * grow)
        if len(self._published) <= slot:
            more = max(slot + 1, 2 * len(self._published)) - len(self._published)
            self._published = np.concatenate([self._published, np.full(more, math.nan)])
        self.teasers[slot] = row.teaser
        self.entities[slot] = row.entities
        self._published[slot] = _timestamp(row.teaser.published)
        self._sections.set(slot, row.teaser.section)
        self._sources.set(slot, row.teaser.source)
        self.slot_of[row.teaser.id] = slot
        self.entity_ids[slot] = self.entity_stats.add(row.entities)

    def add(self, row: StoredArticle) -> None:
        """Put an article (a new version at a new slot, or its metadata at its slot)."""
        with self.lock:
            old = self.slot_of.get(row.teaser.id)
            if old == row.slot:
                self.teasers[old] = row.teaser
                self._published[old] = _timestamp(row.teaser.published)
                self._sections.set(old, row.teaser.section)
                self._sources.set(old, row.teaser.source)
                return
            if old is not None:
                self.remove(row.teaser.id)
            self._place(row)
            self.lexical.add(row.slot, row.terms)
            self.vectors.add(row.slot, row.vector)

    def remove(self, article_id: str) -> None:
        with self.lock:
            slot = self.slot_of.pop(article_id, None)
            if slot is None:
                return
            self.entity_stats.remove(self.entities[slot])
            self.teasers[slot] = None
            self.entities[slot] = Entities()
            self.entity_ids[slot] = NO_IDS
            self.lexical.remove(slot)
            self.vectors.remove(slot)

    def catch_up(self, store: Store) -> int:
        """Replay the store's changes after `seq`; returns how many were applied."""
        with self.lock:
            changes = store.changes_since(self.seq)
            if not changes:
                return 0
            ids = list(dict.fromkeys(c.id for c in changes))
            rows = store.stored(ids)
            for article_id in ids:
                row = rows.get(article_id)
                if row is None:
                    self.remove(article_id)
                else:
                    self.add(row)
            self.seq = changes[-1].seq
            return len(changes)

    def teaser(self, slot: int) -> Article:
        story = self.teasers[slot]
        if story is None:
            raise KeyError(slot)
        return story

    def allowed(
        self,
        section: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        exclude: Sequence[str] = (),
    ) -> np.ndarray | None:
        """A boolean mask over slots of the articles that pass the filters (None: all do)."""
        if section is None and source is None and since is None and until is None and not exclude:
            return None
        size = self.size
        mask = np.ones(size, dtype=bool)
        if section is not None:
            mask &= self._sections.mask(section, size)
        if source is not None:
            mask &= self._sources.mask(source, size)
        published = self._published[:size]
        if since is not None:
            mask &= published >= since.astimezone(UTC).timestamp()
        if until is not None:
            mask &= published <= until.astimezone(UTC).timestamp()
        for article_id in exclude:
            slot = self.slot_of.get(article_id)
            if slot is not None:
                mask[slot] = False
        return mask
