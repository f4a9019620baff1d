"""One open generation of an index directory, and how it is opened.

A `Generation` is what a process holds of one generation (`recommender.storage.generations`):
its store (the source of truth and the log), the lease that keeps it on disk, its mirror
(everything in memory, derived) with the ranking over it, and its meta. `open_generation` checks
the store before it loads the mirror, so a damaged store is refused, never served.
`IndexUnavailable` is the error for an index that cannot be served.

Thread safety: a `Generation` is shared by every thread of the process. Its store and mirror
bring their own locking (SQLite; the mirror's lock); its `mirror` and `related` are replaced
together only by the writer, under the old mirror's lock, after a failed write
(`Writer`). A `ReadView` is a plain snapshot of two references and safe to pass around.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.config import Settings
from recommender.ranking.related import Related
from recommender.storage.generations import Lease
from recommender.storage.lexical import LexicalConfig
from recommender.storage.mirror import Mirror
from recommender.storage.store import Store, StoreDamaged
from recommender.storage.vectors import VectorIndexConfig


class IndexUnavailable(RuntimeError):
    """An index that cannot be served (missing, old format, another model)."""


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


@dataclass(frozen=True)
class ReadView:
    """The mirror and the store of the generation in use when it was taken, as they are (not
    caught up with the log), for what reads a signal the engine does not answer with: the eval
    harness's single-signal runs, a bare vector search in the benchmarks, tests of the mirror.
    Read it only: a write through it would bypass the writer and its log."""

    mirror: Mirror
    store: Store


def open_generation(path: Path, settings: Settings, index_config: VectorIndexConfig) -> Generation:
    """Open a generation, checked first: a damaged store is refused, never served."""
    lease = Lease(path)
    store: Store | None = None
    try:
        try:
            store = Store(path / Store.FILENAME, settings.store_max_bytes)
            store.check()
            meta = store.meta()
            mirror = Mirror.load(store, int(meta["dim"]), index_config, lexical_config(meta))
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"{path / Store.FILENAME}: {exc}") from None
    except BaseException:
        if store is not None:
            store.close()
        lease.release()
        raise
    return Generation(path, store, lease, mirror, Related(mirror, settings.ranking), meta)


def lexical_config(meta: dict[str, Any]) -> LexicalConfig:
    """The lexical settings a generation's term counts were made with."""
    return LexicalConfig.model_validate(meta.get("lexical", {}))


def same_encoding(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two generations' vectors and term counts come from the same model and settings."""
    return all(a.get(k) == b.get(k) for k in ("model_id", "dim", "encoder", "lexical"))
