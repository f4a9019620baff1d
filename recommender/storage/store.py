"""The store: one SQLite file per generation, the source of truth and the log.

Tables:
    meta      model id, dimension, encoder and index settings, created time, next slot
    articles  every field the website renders, the body, the content hash, and the derived
              signals written with it: the vector, the term counts, the named entities, and
              the article's slot (its position in the in-memory arrays and its FAISS id; a new
              version of an article gets a new slot, slots are never reused)
    changes   the log: one row per accepted write (`upsert` or `delete` of an id), numbered
    lists     the materialized related list of every article (final stage, default
              parameters, `max_k` items, rendered as JSON) with the change it was computed at
    listed    who lists whom: (item, list) for every item of every stored list
    waves     the second wave of a write: the older lists it may change (a JSON array of
              ids), keyed by the write's change, recorded in the write's transaction and
              deleted by the transaction that recomputes them

Every accepted write is one transaction (`Store.transaction`): the article, its signals, its
change row and the lists it changes commit together, or not at all. The database runs in WAL
mode with `synchronous=FULL`, so a committed write survives a killed process (and a power
cut), and readers in other processes never wait for a writer. Connections are per thread.

The schema is versioned by numbered migrations (`MIGRATIONS`, SQLite's `PRAGMA user_version`
counts those applied): opening a store applies the ones it lacks, in order, in one transaction,
so a change to the schema is a new migration at the end, never a rebuild. A store written
before migrations existed (`format_version` 3 in its meta, `user_version` 0) is at migration 1.
A store with a migration this code does not know (written by a newer version) is refused.
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

BUSY_TIMEOUT_MS = 60_000
Op = Literal["upsert", "delete"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the schema of format version 3, the last one before migrations (kept verbatim)
    """
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
""",
    # 2: the schema's version is `user_version`; the meta row that held it goes
    """
DELETE FROM meta WHERE key = 'format_version';
""",
    # 3: reverse updates acknowledged but not yet done (a write's second wave)
    """
CREATE TABLE waves (
    seq INTEGER PRIMARY KEY,
    lists BLOB NOT NULL
);
""",
)
"""The store's schema, one SQL script a migration; append a migration, never edit one."""
SCHEMA_VERSION = len(MIGRATIONS)
PRE_MIGRATIONS_FORMAT = 3
"""The last format version of the stores written before migrations: they are at migration 1."""
DELETE_LISTED = "DELETE FROM listed WHERE list = ?"
"""Forgets the items of a list: every write runs it for every list it stores (by an index)."""
_TEASER = "slot, id, url, title, lead, published, section, tags, source"
_SIGNALS = "vector, terms, entities, content_hash"


class StoreError(RuntimeError):
    """A store that cannot be used (missing, not a store, an unknown schema version)."""


class StoreFull(StoreError):
    """A write refused because the store cannot grow: the disk is full (SQLITE_FULL), or the
    store reached its configured size. Nothing of the write was committed."""


class StoreDamaged(StoreError):
    """A store whose file fails SQLite's integrity check (or cannot be read at all)."""


@dataclass(frozen=True)
class StoredArticle:
    """An article row as the in-memory mirror needs it: the teaser (the article without its body,
    what a box shows) and its signals."""

    slot: int
    teaser: Article
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


def _article(row: sqlite3.Row, body: str = "") -> Article:
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
        teaser=_article(row),
        vector=np.frombuffer(row["vector"], dtype=np.float32),
        terms=orjson.loads(row["terms"]),
        entities=_entities(row["entities"]),
        content_hash=row["content_hash"],
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (`executescript` would commit first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _user_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def _unmigrated_version(db: sqlite3.Connection, path: Path, new: bool) -> int:
    """The migration a store without `user_version` is at: 0 for a new, empty file; 1 for a
    store of the last format before migrations; any other is refused."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables and new:
        return 0
    if "meta" not in tables:
        raise StoreError(f"{path} is not a store (no meta table)")
    row = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
    if row is None or int(row[0]) != PRE_MIGRATIONS_FORMAT:
        raise StoreError(
            f"store {path} has format version {row[0] if row else None}, from before "
            f"{PRE_MIGRATIONS_FORMAT}; this version reads it no more. Rebuild the index with "
            "`recommender index build`"
        )
    # added while format 3 was current: the stores built before it lack it
    db.execute("CREATE INDEX IF NOT EXISTS lists_computed ON lists (computed_at)")
    return 1


def _check_known(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema version {version}, newer than this version of the "
            f"recommender knows ({SCHEMA_VERSION}): it was written by a newer release. Run "
            "that release, or rebuild the index with this one (`recommender index build`)"
        )


def _migrate(db: sqlite3.Connection, path: Path, new: bool = False) -> int:
    """Apply the migrations the store lacks, in order, in one transaction (other processes
    opening it meanwhile wait, then find it migrated). Returns the store's schema version."""
    version = _user_version(db)
    _check_known(version, path)
    if version == SCHEMA_VERSION:
        return version
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(db)
        _check_known(version, path)
        if version == 0:
            version = _unmigrated_version(db, path, new)
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _put_row(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    """Insert or replace one row, by column name."""
    columns = ", ".join(row)
    values = ", ".join(f":{c}" for c in row)
    db.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({values})", row)


def _get_list(db: sqlite3.Connection, article_id: str) -> bytes | None:
    row = db.execute("SELECT items FROM lists WHERE id = ?", (article_id,)).fetchone()
    return bytes(row[0]) if row else None


def _rows_in(db: sqlite3.Connection, query: str, ids: Sequence[str]) -> Iterator[sqlite3.Row]:
    """The rows of `query` (its `{ids}`: a list of placeholders) for these ids, in chunks of
    500 (SQLite caps the parameters of one statement)."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        yield from db.execute(query.format(ids=",".join("?" * len(chunk))), chunk)


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
        _migrate(self.db, path)

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
            _migrate(db, path, new=True)
            rows = {**{k: orjson.dumps(v).decode() for k, v in meta.items()}, "next_slot": "0"}
            db.execute("BEGIN")
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
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

    def pending_waves(self) -> int:
        """Writes whose second wave (their reverse updates) is not done yet."""
        (count,) = self.db.execute("SELECT COUNT(*) FROM waves").fetchone()
        return int(count)

    def changes_since(self, seq: int) -> list[Change]:
        return [
            Change(int(r["seq"]), r["op"], r["id"])
            for r in self.db.execute(
                "SELECT seq, op, id FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    def all_articles(self) -> Iterator[StoredArticle]:
        """Every article with its signals, by slot."""
        for row in self.db.execute(f"SELECT {_TEASER}, {_SIGNALS} FROM articles ORDER BY slot"):
            yield _stored(row)

    def full_articles(self) -> Iterator[tuple[Article, StoredArticle]]:
        """Every article with its body and its signals, by slot (for a compaction)."""
        for row in self.db.execute(
            f"SELECT {_TEASER}, body, {_SIGNALS} FROM articles ORDER BY slot"
        ):
            yield _article(row, row["body"]), _stored(row)

    def stored(self, ids: Sequence[str]) -> dict[str, StoredArticle]:
        """The current rows of these ids (absent ids are left out)."""
        query = f"SELECT {_TEASER}, {_SIGNALS} FROM articles WHERE id IN ({{ids}})"
        return {row["id"]: _stored(row) for row in _rows_in(self.db, query, ids)}

    def get(self, article_id: str) -> Article | None:
        """The stored article with its body."""
        row = self.db.execute(
            f"SELECT {_TEASER}, body FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return _article(row, row["body"]) if row else None

    def ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY slot")]

    def get_list(self, article_id: str) -> bytes | None:
        """The materialized related list (JSON array of items) of an article, if it has one."""
        return _get_list(self.db, article_id)

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
        row = {
            "id": article.id,
            "slot": slot,
            "url": article.url,
            "title": article.title,
            "lead": article.lead,
            "body": article.body,
            "published": article.published.isoformat() if article.published else None,
            "published_utc": _utc(article.published),
            "section": article.section,
            "tags": orjson.dumps(article.tags).decode(),
            "source": article.source,
            "content_hash": article.content_hash(),
            "vector": np.asarray(vector, dtype=np.float32).tobytes(),
            "terms": orjson.dumps(terms),
            "entities": orjson.dumps({"counts": entities.counts, "names": entities.names}),
            "seq": seq,
        }
        _put_row(self.db, "articles", row)

    def delete_article(self, article_id: str) -> None:
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        self.drop_list(article_id)

    def put_list(self, article_id: str, items: bytes, item_ids: Iterable[str], seq: int) -> None:
        row = {"id": article_id, "items": items, "seq": seq, "computed_at": now_iso()}
        _put_row(self.db, "lists", row)
        self.db.execute(DELETE_LISTED, (article_id,))
        self.db.executemany(
            "INSERT OR IGNORE INTO listed (item, list) VALUES (?, ?)",
            [(i, article_id) for i in item_ids],
        )

    def touch_list(self, article_id: str) -> None:
        """Mark a list as recomputed without a change to its items."""
        self.db.execute("UPDATE lists SET computed_at = ? WHERE id = ?", (now_iso(), article_id))

    def drop_list(self, article_id: str) -> None:
        self.db.execute("DELETE FROM lists WHERE id = ?", (article_id,))
        self.db.execute(DELETE_LISTED, (article_id,))

    def add_wave(self, seq: int, list_ids: Iterable[str]) -> None:
        """Record the lists a write's second wave recomputes."""
        self.db.execute(
            "INSERT OR REPLACE INTO waves (seq, lists) VALUES (?, ?)",
            (seq, orjson.dumps(sorted(list_ids))),
        )

    def waves(self) -> list[tuple[int, list[str]]]:
        """The pending waves, oldest first: (seq, list ids)."""
        rows = self.db.execute("SELECT seq, lists FROM waves ORDER BY seq")
        return [(int(seq), orjson.loads(lists)) for seq, lists in rows]

    def drop_waves(self, through: int) -> None:
        self.db.execute("DELETE FROM waves WHERE seq <= ?", (through,))

    def lists_holding(self, item_ids: Sequence[str]) -> set[str]:
        query = "SELECT list FROM listed WHERE item IN ({ids})"
        return {r[0] for r in _rows_in(self.db, query, item_ids)}

    def get_list(self, article_id: str) -> bytes | None:
        return _get_list(self.db, article_id)
