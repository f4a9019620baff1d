"""The API's request and response bodies. Each request model states in its schema the rules the
server applies (lengths, patterns, which fields need text), so a request the schema allows is
never refused and one it forbids is never taken."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from recommender.articles import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_BODY,
    MAX_LEAD,
    MAX_NAME,
    MAX_TAGS,
    MAX_TITLE,
    MAX_URL,
    TEXT_PATTERN,
    YEAR_PATTERN,
    Article,
    Published,
    has_text,
)
from recommender.engine import WriteResult
from recommender.ranking.related import RelatedQuery

TEXT_FIELDS = ("title", "lead", "body")


def _text_in(fields: tuple[str, ...]) -> dict[str, Any]:
    """The schema's way to say "one of `fields` holds a letter or digit" (`has_text`)."""
    return {
        "anyOf": [{"required": [f], "properties": {f: {"pattern": TEXT_PATTERN}}} for f in fields]
    }


class StoryOut(BaseModel):
    """What the site renders for a story."""

    id: str
    url: str | None
    title: str
    lead: str
    published: datetime | None
    section: str | None
    source: str | None


class ArticleOut(StoryOut):
    tags: list[str]

    @classmethod
    def of(cls, a: Article) -> ArticleOut:
        return cls.model_validate(a.model_dump(include=set(cls.model_fields)))


class RelatedItemOut(StoryOut):
    score: float
    reason: str
    parts: dict[str, float]


class RelatedOut(BaseModel):
    article_id: str | None = Field(description="The article the list is for; null for text queries")
    model_id: str
    count: int
    items: list[RelatedItemOut]


class TextQuery(RelatedQuery):
    """An article that is not indexed yet, with the same parameters as the GET endpoint. At
    least one of title, lead and body holds a letter or digit (the schema says so too)."""

    model_config = ConfigDict(json_schema_extra=_text_in(TEXT_FIELDS))

    title: str = Field(default="", max_length=MAX_TITLE)
    lead: str = Field(default="", max_length=MAX_LEAD)
    body: str = Field(default="", max_length=MAX_BODY)
    published: Published | None = Field(
        default=None,
        description="its publication time, for freshness (default: none); no zone means UTC",
    )

    @model_validator(mode="after")
    def _has_text(self) -> TextQuery:
        if not any(has_text(getattr(self, f)) for f in TEXT_FIELDS):
            raise ValueError(
                "title, lead and body have no letter or digit: give the article's text"
            )
        return self

    def query(self) -> RelatedQuery:
        """The list's parameters."""
        return RelatedQuery.model_validate(self.model_dump(include=set(RelatedQuery.model_fields)))

    def article(self) -> Article:
        """The text as an article that is not indexed."""
        return Article.model_construct(
            id="",
            title=self.title,
            lead=self.lead,
            body=self.body,
            published=self.published,
            section=None,
            tags=[],
            url=None,
            source=None,
        )


def _year_written(value: str) -> str:
    if not re.match(YEAR_PATTERN, value):
        raise ValueError(
            f"expected an ISO 8601 date or date-time with a year from {FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


PublishedIn = Annotated[
    str,
    AfterValidator(_year_written),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": YEAR_PATTERN},
                {"type": "string", "format": "date", "pattern": YEAR_PATTERN},
            ]
        }
    ),
]
"""`published` as a write gives it: an ISO 8601 date-time or date whose year (as written) is in
range; the rest of the reading is `Article`'s."""
Name = Annotated[str, Field(max_length=MAX_NAME)]


class ArticleIn(BaseModel):
    """An article to publish: the fields of the input format (`id` comes from the path). The
    title holds a letter or digit, and so does the body or the lead; each text has its length
    limit; `tags` is a list or one string separated by `|` or `,`."""

    model_config = ConfigDict(json_schema_extra=_text_in(("lead", "body")))

    title: str = Field(
        min_length=1, max_length=MAX_TITLE, json_schema_extra={"pattern": TEXT_PATTERN}
    )
    lead: str = Field(default="", max_length=MAX_LEAD)
    body: str = Field(default="", max_length=MAX_BODY)
    published: PublishedIn | None = None
    url: str | None = Field(default=None, max_length=MAX_URL)
    section: Name | None = None
    tags: Annotated[list[Name], Field(max_length=MAX_TAGS)] | Name = Field(default_factory=list)
    source: Name | None = None


class WriteOut(BaseModel):
    """The outcome of one write: `created`, `updated`, `unchanged` (same content: nothing
    re-encoded), `deleted`, `not_found`, `rejected` (with the reason) or `duplicate` (a later
    item of the same bulk has this id: that one is acted on)."""

    id: str | None
    status: Literal[
        "created", "updated", "unchanged", "deleted", "not_found", "rejected", "duplicate"
    ]
    seq: int | None = Field(default=None, description="the change's number in the log")
    reason: str | None = None

    @classmethod
    def of(cls, r: WriteResult) -> WriteOut:
        return cls(id=r.id, status=r.status, seq=r.seq)


class BulkOut(BaseModel):
    results: list[WriteOut]
    counts: dict[str, int]

    @classmethod
    def of(cls, results: list[WriteOut]) -> BulkOut:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return cls(results=results, counts=counts)


class DeleteIn(BaseModel):
    ids: list[str] = Field(min_length=1, description="ids to unpublish")
