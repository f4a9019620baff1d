"""The article record: what a site publishes, validated.

Field names (JSONL keys, CSV header or JSON body): `id`, `title`, `lead` (alias `subtitle`), `body`,
`published` (ISO date or date-time), `url`, `section`, `tags` (a JSON list, or in CSV a string
separated by `|` or `,`), `source` (alias `site`). `id` and `title` are required, and at least one
of `body` and `lead`. Unknown fields are ignored.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recommender.text.clean import has_text

MAX_ID_LENGTH = 200


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one is taken as UTC. Moments past the ends of the calendar
    once in UTC (0001-01-01T00:00+14:00) become its first or last moment."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


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

    @field_validator("id")
    @classmethod
    def _path_segment(cls, value: str) -> str:
        if "/" in value or value in {".", ".."}:
            raise ValueError("must not contain '/' nor be '.' or '..': an id is one URL segment")
        return value

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
        return as_utc(value) if value is not None else None

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if isinstance(value, str):
            sep = "|" if "|" in value else ","
            return [t.strip() for t in value.split(sep) if t.strip()]
        return value

    @model_validator(mode="after")
    def _needs_text(self) -> Article:
        if not has_text(self.title):
            raise ValueError("'title' has no letter or digit")
        if not has_text(self.body) and not has_text(self.lead):
            raise ValueError("needs a non-empty 'body' or 'lead'")
        return self

    def content_hash(self) -> str:
        """Hash of everything that feeds the embedded text; a change re-encodes the article."""
        payload = "\x1f".join((self.title, self.lead, self.body))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
