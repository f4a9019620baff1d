"""The store: one SQLite file per generation, the source of truth and the log.

Tables:
    meta      model id, dimension, encoder and index settings, format version, created time
    articles  every field the website renders, the body, the content hash, and the derived
              signals written with it: the vector, the term counts, the named entities, and
              the article's slot (its position in the in-memory arrays and its FAISS id; a new
              version of an article gets a new slot, slots are never reused)
    changes   the log: one row per accepted write (`upsert` or `delete` of an id), numbered
    lists     the materialized related list of every article (final stage, default
              parameters, `max_k` items, rendered as JSON) with the change it was computed at
    listed    who lists whom: (item, list) for every item of every stored list

Every accepted write is one transaction (`Store.transaction`): the article, its signals, its
change row and the lists it changes commit together, or not at all. The database runs in WAL
mode with `synchronous=FULL`, so a committed write survives a killed process (and a power
cut), and readers in other processes never wait for a writer. Connections are per thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from recommender.articles import Article
from recommender.text.entities import Entities

FORMAT_VERSION = 3
BUSY_TIMEOUT_MS = 60_000
Op = Literal["upsert", "delete"]

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles (
    id TEXT PRIMARY KEY,
    slot INTEGER NOT NULL UNIQUE,
    url TEXT,
    title TEXT NOT NULL,
    lead TEXT NOT NULL,
    body TEXT NOT NULL,
    published TEXT,
    published_utc TEXT,
    section TEXT,
    tags TEXT NOT NULL,
    source TEXT,
    content_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    terms BLOB NOT NULL,
    entities BLOB NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX articles_published ON articles (published_utc);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    id TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE lists (
    id TEXT PRIMARY KEY,
    items BLOB NOT NULL,
    seq INTEGER NOT NULL,
    computed_at TEXT NOT NULL
);
CREATE TABLE listed (
    item TEXT NOT NULL,
    list TEXT NOT NULL,
    PRIMARY KEY (item, list)
) WITHOUT ROWID;
CREATE INDEX listed_by_list ON listed (list);
CREATE INDEX lists_computed ON lists (computed_at);
"""
_STORY = "slot, id, url, title, lead, published, section, tags, source"


class StoreError(RuntimeError):
    """A store that cannot be used (missing, another format version)."""


class StoreFull(StoreError):
    """A write refused because the store cannot grow: the disk is full (SQLITE_FULL), or the
    store reached its configured size. Nothing of the write was committed."""


class StoreDamaged(StoreError):
    """A store whose file fails SQLite's integrity check (or cannot be read at all)."""


@dataclass(frozen=True)
class StoredArticle:
    """An article row as the in-memory mirror needs it: the story (no body) and its signals."""

    slot: int
    story: Article
    vector: np.ndarray
    terms: dict[str, int]
    entities: Entities
    content_hash: str


@dataclass(frozen=True)
class Change:
    seq: int
    op: Op
    id: str


def _utc(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _story(row: sqlite3.Row, body: str = "") -> Article:
    """Rows were validated on the way in, so they are constructed without validating again."""
    return Article.model_construct(
        id=row["id"],
        url=row["url"],
        title=row["title"],
        lead=row["lead"],
        body=body,
        published=datetime.fromisoformat(row["published"]) if row["published"] else None,
        section=row["section"],
        tags=orjson.loads(row["tags"]),
        source=row["source"],
    )


def _entities(raw: bytes) -> Entities:
    data = orjson.loads(raw)
    return Entities(data.get("counts", {}), data.get("names", {}))


def _stored(row: sqlite3.Row) -> StoredArticle:
    return StoredArticle(
        slot=int(row["slot"]),
        story=_story(row),
        vector=np.frombuffer(row["vector"], dtype=np.float32),
        terms=orjson.loads(row["terms"]),
        entities=_entities(row["entities"]),
        content_hash=row["content_hash"],
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """Access to one store file; one SQLite connection per thread."""

    FILENAME = "store.sqlite"

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        """`max_bytes` caps the file's size (SQLite's `max_page_count` on every connection)."""
        if not path.is_file():
            raise StoreError(f"store not found: {path}")
        self.path = path
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        version = self.meta().get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"store {path} has format version {version}; this version reads "
                f"{FORMAT_VERSION}. Rebuild the index with `recommender index build`"
            )
        # added within format 3: stores built before it get it on first open
        self.db.execute("CREATE INDEX IF NOT EXISTS lists_computed ON lists (computed_at)")

    @staticmethod
    def _connect(path: Path, max_bytes: int | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if max_bytes is not None:
            (page_size,) = db.execute("PRAGMA page_size").fetchone()
            db.execute(f"PRAGMA max_page_count={max(max_bytes // int(page_size), 1)}")
        return db

    @classmethod
    def create(cls, path: Path, meta: dict[str, Any]) -> Store:
        """A new, empty store with its meta data."""
        db = cls._connect(path)
        try:
            db.executescript(_SCHEMA)
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [(k, orjson.dumps(v).decode()) for k, v in meta.items()]
                + [("format_version", str(FORMAT_VERSION)), ("next_slot", "0")],
            )
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(path)

    @property
    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._connect(self.path, self.max_bytes)
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def check(self) -> None:
        """SQLite's `quick_check` of every page (about 0.04 s on the bg-news store of 54 MB,
        0.4 s at 24,000 articles and 523 MB, warm): raises `StoreDamaged` with its first
        findings."""
        try:
            found = [
                line
                for r in self.db.execute("PRAGMA quick_check(5)")
                for line in str(r[0]).splitlines()
            ]
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"{self.path}: {exc}") from None
        if found != ["ok"]:
            raise StoreDamaged(f"{self.path}: {'; '.join(found)}")

    def meta(self) -> dict[str, Any]:
        return {k: orjson.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def head(self) -> int:
        """The sequence number of the last committed change (0 for none)."""
        (seq,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        return int(seq)

    def count(self) -> int:
        (n,) = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()
        return int(n)

    def changes_since(self, seq: int) -> list[Change]:
        return [
            Change(int(r["seq"]), r["op"], r["id"])
            for r in self.db.execute(
                "SELECT seq, op, id FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    def all_articles(self) -> Iterator[StoredArticle]:
        """Every article with its signals, by slot."""
        for row in self.db.execute(
            f"SELECT {_STORY}, vector, terms, entities, content_hash FROM articles ORDER BY slot"
        ):
            yield _stored(row)

    def full_articles(self) -> Iterator[tuple[Article, StoredArticle]]:
        """Every article with its body and its signals, by slot (for a compaction)."""
        for row in self.db.execute(
            f"SELECT {_STORY}, body, vector, terms, entities, content_hash FROM articles "
            "ORDER BY slot"
        ):
            yield _story(row, row["body"]), _stored(row)

    def stored(self, ids: Sequence[str]) -> dict[str, StoredArticle]:
        """The current rows of these ids (absent ids are left out)."""
        found: dict[str, StoredArticle] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT {_STORY}, vector, terms, entities, content_hash FROM articles "
                f"WHERE id IN ({marks})",
                chunk,
            ):
                found[row["id"]] = _stored(row)
        return found

    def get(self, article_id: str) -> Article | None:
        """The stored article with its body."""
        row = self.db.execute(
            f"SELECT {_STORY}, body FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return _story(row, row["body"]) if row else None

    def ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY slot")]

    def get_list(self, article_id: str) -> bytes | None:
        """The materialized related list (JSON array of items) of an article, if it has one."""
        row = self.db.execute("SELECT items FROM lists WHERE id = ?", (article_id,)).fetchone()
        return bytes(row[0]) if row else None

    def oldest_lists(self, limit: int) -> list[str]:
        """Ids of the lists computed longest ago, for the periodic refresh."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM lists ORDER BY computed_at, id LIMIT ?", (limit,)
            )
        ]

    def oldest_list_time(self) -> datetime | None:
        """When the stored list computed longest ago was computed (None without lists)."""
        (oldest,) = self.db.execute("SELECT MIN(computed_at) FROM lists").fetchone()
        return datetime.fromisoformat(oldest) if oldest else None

    def summary(self) -> dict[str, object]:
        """Publication range and article counts by section and by source, largest first."""
        first, last = self.db.execute(
            "SELECT MIN(published_utc), MAX(published_utc) FROM articles"
        ).fetchone()
        counts = {}
        for column in ("section", "source"):
            rows = self.db.execute(
                f"SELECT COALESCE({column}, '-'), COUNT(*) AS n FROM articles "
                f"GROUP BY 1 ORDER BY n DESC, 1"
            )
            counts[column + "s"] = {str(name): int(n) for name, n in rows}
        (lists,) = self.db.execute("SELECT COUNT(*) FROM lists").fetchone()
        return {"published_range": [first, last] if first else None, "lists": lists, **counts}

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (`BEGIN IMMEDIATE`: writers queue, readers go on)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(db)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
                limit = (
                    f", or it reached its limit of {self.max_bytes} bytes "
                    "(RECOMMENDER_STORE_MAX_BYTES)"
                    if self.max_bytes
                    else ""
                )
                raise StoreFull(
                    f"the store {self.path} cannot grow ({exc}): the disk holding it is full"
                    f"{limit}; nothing was written. Free space (or `recommender index compact`) "
                    "and retry"
                ) from exc
            raise

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()


class Transaction:
    """The writes of one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def take_slot(self) -> int:
        (slot,) = self.db.execute("SELECT value FROM meta WHERE key = 'next_slot'").fetchone()
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'next_slot'", (str(int(slot) + 1),))
        return int(slot)

    def log(self, op: Op, article_id: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO changes (op, id, at) VALUES (?, ?, ?)", (op, article_id, now_iso())
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def put_article(
        self,
        article: Article,
        slot: int,
        vector: np.ndarray,
        terms: dict[str, int],
        entities: Entities,
        seq: int,
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                article.id,
                slot,
                article.url,
                article.title,
                article.lead,
                article.body,
                article.published.isoformat() if article.published else None,
                _utc(article.published),
                article.section,
                orjson.dumps(article.tags).decode(),
                article.source,
                article.content_hash(),
                np.asarray(vector, dtype=np.float32).tobytes(),
                orjson.dumps(terms),
                orjson.dumps({"counts": entities.counts, "names": entities.names}),
                seq,
            ),
        )

    def delete_article(self, article_id: str) -> None:
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        self.drop_list(article_id)

    def put_list(self, article_id: str, items: bytes, item_ids: Iterable[str], seq: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO lists VALUES (?, ?, ?, ?)",
            (article_id, items, seq, now_iso()),
        )
        self.db.execute("DELETE FROM listed WHERE list = ?", (article_id,))
        self.db.executemany(
            "INSERT OR IGNORE INTO listed VALUES (?, ?)", [(i, article_id) for i in item_ids]
        )

    def touch_list(self, article_id: str) -> None:
        """Mark a list as recomputed without a change to its items."""
        self.db.execute("UPDATE lists SET computed_at = ? WHERE id = ?", (now_iso(), article_id))

    def drop_list(self, article_id: str) -> None:
        self.db.execute("DELETE FROM lists WHERE id = ?", (article_id,))
        self.db.execute("DELETE FROM listed WHERE list = ?", (article_id,))

    def lists_holding(self, item_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(item_ids), 500):
            chunk = list(item_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.db.execute(f"SELECT list FROM listed WHERE item IN ({marks})", chunk)
            )
        return found

    def get_list(self, article_id: str) -> bytes | None:
        row = self.db.execute("SELECT items FROM lists WHERE id = ?", (article_id,)).fetchone()
        return bytes(row[0]) if row else None
