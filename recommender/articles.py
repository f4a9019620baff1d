"""The article record and the readers for JSONL and CSV input.

Field names (JSONL keys or CSV header): `id`, `title`, `lead` (alias `subtitle`), `body`,
`published` (ISO date or date-time), `url`, `section`, `tags` (a JSON list, or in CSV a string
separated by `|` or `,`), `source` (alias `site`). `id` and `title` are required, and at least one
of `body` and `lead`. Unknown fields are ignored.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_ID_LENGTH = 200


class Article(BaseModel):
    """One news article as the site publishes it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = Field(min_length=1)
    lead: str = Field(default="", validation_alias="subtitle")
    body: str = ""
    published: datetime | None = None
    url: str | None = None
    section: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str | None = Field(default=None, validation_alias="site")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if v is not None}
            for alias, name in (("subtitle", "lead"), ("site", "source")):
                if name in data and alias not in data:
                    data[alias] = data.pop(name)
            if "id" in data and isinstance(data["id"], int):
                data["id"] = str(data["id"])
        return data

    @field_validator("published", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value.strip()) == 10:
            return datetime.combine(date.fromisoformat(value.strip()), time(0, 0))
        if value == "":
            return None
        return value

    @field_validator("published")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if isinstance(value, str):
            sep = "|" if "|" in value else ","
            return [t.strip() for t in value.split(sep) if t.strip()]
        return value

    @model_validator(mode="after")
    def _needs_text(self) -> Article:
        if not self.body and not self.lead:
            raise ValueError("needs a non-empty 'body' or 'lead'")
        return self

    def content_hash(self) -> str:
        """Hash of everything that feeds the embedded text; a change re-encodes the article."""
        payload = "\x1f".join((self.title, self.lead, self.body))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Reject:
    """An input row that could not be read, with where and why."""

    source: str
    line: int
    reason: str
    raw: str


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "row"
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"field '{field}': {msg}" if e["loc"] else msg)
    return "; ".join(parts)


def parse_article(data: Any) -> Article:
    return Article.model_validate(data)


Row = tuple[int, "Article | Reject"]


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield lineno, Reject(str(path), lineno, f"invalid JSON: {exc}", text)
                continue
            if not isinstance(data, dict):
                yield lineno, Reject(str(path), lineno, "expected a JSON object", text)
                continue
            try:
                yield lineno, parse_article(data)
            except ValidationError as exc:
                yield lineno, Reject(str(path), lineno, _reason(exc), text)


def _read_csv(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        start = 2
        for row in reader:
            lineno, start = start, reader.line_num + 1
            raw = ",".join(v or "" for v in row.values() if isinstance(v, str))
            if None in row:
                yield lineno, Reject(str(path), lineno, "more values than header fields", raw)
                continue
            try:
                yield lineno, parse_article({k: v for k, v in row.items() if v != ""})
            except ValidationError as exc:
                yield lineno, Reject(str(path), lineno, _reason(exc), raw)


def read_rows(path: Path) -> Iterator[Row]:
    """Yield (line number, Article or Reject) for every row of a JSONL or CSV file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise ValueError(f"{path}: unknown input format '{suffix}' (expected .jsonl or .csv)")


def read_articles(path: Path) -> Iterator[Article | Reject]:
    """Every row of a JSONL or CSV file as an Article, or a Reject naming line and reason."""
    return (item for _, item in read_rows(path))
