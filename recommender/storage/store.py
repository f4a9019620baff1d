"""The article store: one SQLite file per index with every field the website renders.

Row numbers are the FAISS ids: row `i` of the store is vector `i` of the index, so a string id
maps to exactly one FAISS id and back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from recommender.articles import Article
from recommender.text.entities import Entities

_SCHEMA = """
CREATE TABLE articles (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
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
    model_id TEXT NOT NULL,
    entities TEXT
);
CREATE INDEX articles_published ON articles (published_utc);
"""
_COLUMNS = "row, id, url, title, lead, body, published, section, tags, source"
_COLUMNS_NO_BODY = "row, id, url, title, lead, '' AS body, published, section, tags, source"


def _utc(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _entities_json(entities: Entities) -> str:
    return orjson.dumps({"counts": entities.counts, "names": entities.names}).decode()


def _to_article(row: sqlite3.Row) -> Article:
    """Rows were validated on the way in, so they are constructed without validating again."""
    return Article.model_construct(
        id=row["id"],
        url=row["url"],
        title=row["title"],
        lead=row["lead"],
        body=row["body"],
        published=datetime.fromisoformat(row["published"]) if row["published"] else None,
        section=row["section"],
        tags=orjson.loads(row["tags"]),
        source=row["source"],
    )


class ArticleStore:
    """Read access to a finished store; `ArticleStore.write` creates a new one."""

    FILENAME = "articles.sqlite"

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"article store not found: {path}")
        self.path = path
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._row_of: dict[str, int] = dict(
            (r["id"], r["row"]) for r in self._db.execute("SELECT id, row FROM articles")
        )
        self._ids = [""] * len(self._row_of)
        for article_id, row in self._row_of.items():
            self._ids[row] = article_id

    @staticmethod
    def write(
        path: Path,
        articles: Iterable[Article],
        model_id: str,
        entities: Sequence[Entities] | None = None,
    ) -> int:
        """Write a new store; rows are numbered in the order given. Returns the count."""
        db = sqlite3.connect(path)
        try:
            db.executescript(_SCHEMA)
            with db:
                db.executemany(
                    "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        (
                            row,
                            a.id,
                            a.url,
                            a.title,
                            a.lead,
                            a.body,
                            a.published.isoformat() if a.published else None,
                            _utc(a.published),
                            a.section,
                            orjson.dumps(a.tags).decode(),
                            a.source,
                            a.content_hash(),
                            model_id,
                            _entities_json(entities[row]) if entities is not None else None,
                        )
                        for row, a in enumerate(articles)
                    ),
                )
            (count,) = db.execute("SELECT COUNT(*) FROM articles").fetchone()
        finally:
            db.close()
        return int(count)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._row_of

    @property
    def ids(self) -> list[str]:
        """String ids in row (FAISS id) order."""
        return self._ids

    def row_of(self, article_id: str) -> int | None:
        return self._row_of.get(article_id)

    def get(self, article_id: str) -> Article | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return _to_article(row) if row else None

    def get_rows(self, rows: Sequence[int], with_body: bool = True) -> list[Article]:
        """Articles for FAISS ids, in the order asked; without bodies if not needed."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        columns = _COLUMNS if with_body else _COLUMNS_NO_BODY
        found = {
            r["row"]: _to_article(r)
            for r in self._db.execute(
                f"SELECT {columns} FROM articles WHERE row IN ({marks})", [int(x) for x in rows]
            )
        }
        return [found[int(r)] for r in rows]

    def rows_matching(
        self,
        section: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> np.ndarray:
        """Rows (FAISS ids) of the articles that pass the given filters."""
        where: list[str] = []
        args: list[str] = []
        for column, value in (("section", section), ("source", source)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("published_utc >= ?")
            args.append(since.astimezone(UTC).isoformat())
        if until is not None:
            where.append("published_utc <= ?")
            args.append(until.astimezone(UTC).isoformat())
        sql = "SELECT row FROM articles" + (" WHERE " + " AND ".join(where) if where else "")
        return np.fromiter((r[0] for r in self._db.execute(sql, args)), dtype=np.int64)

    def entities_of(self, rows: Sequence[int]) -> list[Entities]:
        """Stored named entities for FAISS ids, in the order asked (empty where none)."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {}
        for row, raw in self._db.execute(
            f"SELECT row, entities FROM articles WHERE row IN ({marks})", [int(x) for x in rows]
        ):
            data = orjson.loads(raw) if raw else {}
            found[row] = Entities(data.get("counts", {}), data.get("names", {}))
        return [found.get(int(r), Entities()) for r in rows]

    def summary(self) -> dict[str, object]:
        """Publication range and article counts by section and by source, largest first."""
        first, last = self._db.execute(
            "SELECT MIN(published_utc), MAX(published_utc) FROM articles"
        ).fetchone()
        counts = {}
        for column in ("section", "source"):
            rows = self._db.execute(
                f"SELECT COALESCE({column}, '-'), COUNT(*) AS n FROM articles "
                f"GROUP BY 1 ORDER BY n DESC, 1"
            )
            counts[column + "s"] = {str(name): int(n) for name, n in rows}
        return {"published_range": [first, last] if first else None, **counts}

    def close(self) -> None:
        self._db.close()
