"""The article record: what a site publishes, validated.

Field names (JSONL keys, CSV header or JSON body): `id`, `title`, `lead` (alias `subtitle`), `body`,
`published` (ISO date or date-time), `url`, `section`, `tags` (a JSON list, or in CSV a string
separated by `|` or `,`), `source` (alias `site`). `id` and `title` are required, and at least one
of `body` and `lead`. Unknown fields are ignored.

Rules, each refused naming the field: an id is one URL segment as given (no `/`, not `.` or
`..`, no leading or trailing space, no control, format, zero-width or surrogate character, no line
or paragraph separator, no U+FFFD, which is what invalid UTF-8 in a URL decodes to (the rule is
also one pattern, `id_pattern`); a JSON number is taken as its decimal string, a
boolean is refused); `published` is an ISO 8601 string (never a number of seconds) written
with a year from `FIRST_YEAR` to `LAST_YEAR`; every text field has a length limit (`LIMITS`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

MAX_ID_LENGTH = 200
MAX_TITLE = 2_000
MAX_LEAD = 5_000
MAX_BODY = 100_000
MAX_URL = 4_000
MAX_NAME = 200
MAX_TAGS = 100
FIRST_YEAR, LAST_YEAR = 1900, 2999
"""The years `published` may be written in: a far-future date would overflow when shown in a
local zone. The year is checked as written, before conversion to UTC, so that the range is one
pattern of the published schema (`YEAR_PATTERN`)."""
YEAR_PATTERN = r"^(19|2[0-9])[0-9]{2}-"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BAD_ID_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


TEXT_PATTERN = (
    r"[0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F"  # ASCII digits, Latin letters
    r"\u0386\u0388-\u03FF"  # Greek
    r"\u0400-\u0481\u048A-\u052F]"  # Cyrillic
)
"""What text must contain to count as text: an ASCII digit or a letter of the Latin, Greek or
Cyrillic alphabets (so NUL, zero-width and no-break spaces, or punctuation alone, do not).
Also the JSON-schema `pattern` of the API, so it is written as explicit ranges, which Python's
`re` and ECMA-262 regexes read alike (ECMA's `\\w` is ASCII only: Cyrillic would not match)."""


def has_text(text: str) -> bool:
    """`text` holds at least one letter or digit."""
    return re.search(TEXT_PATTERN, text) is not None


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


def iso_only(value: Any) -> Any:
    """A date-time given as an ISO 8601 string (or already a datetime), never as a number."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date-time, e.g. 2026-07-01T12:00:00+03:00")


IsoDateTime = Annotated[datetime, BeforeValidator(iso_only), AfterValidator(as_utc)]
"""An ISO 8601 date-time (never a number of seconds), in UTC; without zone it is UTC."""


def _year_in_range(moment: datetime) -> datetime:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return moment


Published = Annotated[
    datetime,
    BeforeValidator(iso_only),
    AfterValidator(_year_in_range),
    AfterValidator(as_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": YEAR_PATTERN}),
]
"""A publication time: an ISO 8601 date-time written with a year from `FIRST_YEAR` to
`LAST_YEAR`, in UTC."""


def id_problem(value: str) -> str | None:
    """Why `value` is not a valid article id, or None when it is."""
    if "/" in value or value in {".", ".."}:
        return "must not contain '/' nor be '.' or '..': an id is one URL segment"
    if value != value.strip():
        return "must not begin or end with a space: ids are taken as given"
    if "\ufffd" in value:
        return "holds U+FFFD: the URL's percent-encoding is not valid UTF-8"
    bad = next((c for c in value if unicodedata.category(c) in _BAD_ID_CATEGORIES), None)
    if bad is not None:
        return f"must not hold control, format or zero-width characters (U+{ord(bad):04X})"
    return None


def _bad_in_id(c: str) -> bool:
    return c in "/\ufffd" or unicodedata.category(c) in _BAD_ID_CATEGORIES


def _class_without(excluded: Callable[[str], bool]) -> str:
    """A regex class of every character but the `excluded` ones: BMP ones as `\\uXXXX`, others
    as themselves (read alike by Python's `re` and ECMA-262 with the `u` flag). Surrogates are
    not named (Rust's regex, which validators use, refuses them): a URL or JSON text cannot
    hold one alone."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x110000):
        if excluded(chr(cp)) and not 0xD800 <= cp <= 0xDFFF:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))

    def char(cp: int) -> str:
        return f"\\u{cp:04X}" if cp < 0x10000 else chr(cp)

    return "[^" + "".join(char(a) + ("" if a == b else "-" + char(b)) for a, b in ranges) + "]"


@functools.cache
def id_pattern() -> str:
    """`id_problem`'s rule as one regex (the API schema states it for `PUT /articles/{id}`):
    not `.` or `..`, no `/`, U+FFFD or character of the refused categories, no space at either
    end. The end is `(?![\\s\\S])`, as `$` also matches before a final newline in Python."""
    end = r"(?![\s\S])"
    inner = _class_without(_bad_in_id)
    edge = _class_without(lambda c: _bad_in_id(c) or c.isspace())
    return rf"^(?!\.\.?{end}){edge}(?:{inner}*{edge})?{end}"


class Article(BaseModel):
    """One news article as the site publishes it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    lead: str = Field(default="", max_length=MAX_LEAD, validation_alias="subtitle")
    body: str = Field(default="", max_length=MAX_BODY)
    published: Published | None = None
    url: str | None = Field(default=None, max_length=MAX_URL)
    section: str | None = Field(default=None, max_length=MAX_NAME)
    tags: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=MAX_TAGS
    )
    source: str | None = Field(default=None, max_length=MAX_NAME, validation_alias="site")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if v is not None}
            for alias, name in (("subtitle", "lead"), ("site", "source")):
                if name in data and alias not in data:
                    data[alias] = data.pop(name)
            if isinstance(data.get("id"), int) and not isinstance(data["id"], bool):
                data["id"] = str(data["id"])
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _valid_id(cls, value: Any) -> Any:
        """Checked before whitespace is stripped: an id is never rewritten."""
        if isinstance(value, str) and (problem := id_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("published", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value.strip()) == 10:
            return datetime.combine(date.fromisoformat(value.strip()), time(0, 0))
        if value == "":
            return None
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
        if not has_text(self.title):
            raise ValueError("'title' has no letter or digit")
        if not has_text(self.body) and not has_text(self.lead):
            raise ValueError("needs a non-empty 'body' or 'lead'")
        return self

    def content_hash(self) -> str:
        """Hash of everything that feeds the embedded text; a change re-encodes the article."""
        payload = "\x1f".join((self.title, self.lead, self.body))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
