"""Rendering of the related-stories box and the demo pages (Jinja2, every value escaped)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from recommender.text.clean import clean_body

MONTHS = (
    "януари",
    "февруари",
    "март",
    "април",
    "май",
    "юни",
    "юли",
    "август",
    "септември",
    "октомври",
    "ноември",
    "декември",
)
BOX_HEADING = "Свързани новини"


class Story(Protocol):
    """What the box shows of a story (the API's related item and the stored article both are)."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def lead(self) -> str: ...
    @property
    def published(self) -> datetime | None: ...
    @property
    def source(self) -> str | None: ...


def local_time(moment: datetime, zone: ZoneInfo) -> datetime:
    """The moment in the site's zone; in UTC where that zone would pass the calendar's end
    (a stored date from before `published` had its range)."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        return moment


def bulgarian_date(moment: datetime, zone: ZoneInfo) -> str:
    """„17 декември 2025“: the day in the site's zone, the month's name, the year."""
    local = local_time(moment, zone)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def safe_href(url: str | None) -> str | None:
    """An http(s) or site-relative link, or None: a stored `javascript:` URL never becomes one."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/"):
        return url
    return None


class Renderer:
    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.env = Environment(
            loader=PackageLoader("recommender.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["bg_date"] = lambda m: bulgarian_date(m, self.zone)
        self.env.filters["local_iso"] = lambda m: local_time(m, self.zone).isoformat()
        self.env.filters["href"] = safe_href

    def box(self, article_id: str, items: Sequence[Story]) -> str:
        """The box's HTML fragment; empty when there is nothing to show."""
        if not items:
            return ""
        heading_id = "related-" + hashlib.sha256(article_id.encode()).hexdigest()[:10]
        return self.env.get_template("box.html").render(
            article_id=article_id, items=items, heading=BOX_HEADING, heading_id=heading_id
        )

    def demo_index(self, articles: Sequence[Story]) -> str:
        return self.env.get_template("demo_index.html").render(articles=articles)

    def demo_article(self, article: Story, body: str, k: int) -> str:
        paragraphs = clean_body(body, article.title, article.lead).split("\n")
        return self.env.get_template("demo_article.html").render(
            article=article, paragraphs=[p for p in paragraphs if p], k=k
        )
