"""Readers for JSONL and CSV input: every row becomes an `Article` or a `Reject` naming its line
and the field at fault; nothing valid is lost to a bad row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import ValidationError

from recommender.articles import Article


@dataclass(frozen=True)
class Reject:
    """An input row that could not be read, with where and why."""

    source: str
    line: int
    reason: str
    raw: str


def validation_reason(err: ValidationError) -> str:
    """A validation error as one line naming each field at fault."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "row"
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"field '{field}': {msg}" if e["loc"] else msg)
    return "; ".join(parts)


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
                yield lineno, Article.model_validate(data)
            except ValidationError as exc:
                yield lineno, Reject(str(path), lineno, validation_reason(exc), text)


def _read_csv(path: Path) -> Iterator[Row]:
    # bytes that are not UTF-8 come through as surrogates: their row is refused, not the file
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.DictReader(fh)
        start = 2
        for row in reader:
            lineno, start = start, reader.line_num + 1
            raw = ",".join(v or "" for v in row.values() if isinstance(v, str))
            readable = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if readable != raw:
                yield lineno, Reject(str(path), lineno, "not valid UTF-8 text", readable)
                continue
            if None in row:
                yield lineno, Reject(str(path), lineno, "more values than header fields", raw)
                continue
            try:
                yield lineno, Article.model_validate({k: v for k, v in row.items() if v != ""})
            except ValidationError as exc:
                yield lineno, Reject(str(path), lineno, validation_reason(exc), raw)


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
