"""Cleaning of Bulgarian news text before it is embedded or indexed.

Removes HTML remnants, page furniture (share buttons, comment counters, photo credits,
"read more" lines), a body that repeats the title or the lead, invisible characters, and folds
quote, dash and whitespace variants into one form each.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]{0,200}>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li)\s*/?>", re.IGNORECASE)
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_DOUBLE_QUOTES = re.compile("[„“”«»‟″〝〞＂]")
_SINGLE_QUOTES = re.compile("[‘’‚‛′]")
_DASHES = re.compile("[‐‑‒–—―−]")

_BOILERPLATE = [
    r"сподели(те)?( в [\w ]+)?:?",
    r"коментари\s*\(\d+\)",
    r"\d+\s+коментар(а|и)?",
    r"(снимка|снимки|фото|фотография|photo|видео|източник на снимката)\s*:.{0,80}",
    r"(снимка|фото)\s*(архив|бта|ройтерс|reuters|ap|afp|epa|getty images)",
    r"последвайте ни( в| във)? .{0,40}",
    r"абонирайте се.{0,80}",
    r"(още|прочетете още|вижте още|свързани новини|по темата|още по темата)\s*:?",
    r"(tweet|share|like|харесай|туит)",
    r"\d{1,2}\s+(януари|февруари|март|април|май|юни|юли|август|септември|октомври|ноември|декември),?\s+\d{4}",
    r"реклама",
]
_BOILERPLATE_LINE = re.compile(
    r"^\s*(?:" + "|".join(_BOILERPLATE) + r")\s*$", re.IGNORECASE | re.UNICODE
)


def normalize_text(text: str) -> str:
    """HTML entities and tags out, one form of quotes and dashes, invisible characters out."""
    if "<" in text:
        text = _BREAK.sub("\n", text)
        text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = _INVISIBLE.sub("", text)
    text = _DOUBLE_QUOTES.sub('"', text)
    text = _SINGLE_QUOTES.sub("'", text)
    text = _DASHES.sub("-", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _key(line: str) -> str:
    return re.sub(r"\W+", " ", line).strip().lower()


def clean_lines(text: str, drop: tuple[str, ...] = ()) -> list[str]:
    """Normalized, non-empty lines of `text` without boilerplate or lines equal to `drop`."""
    dropped = {_key(d) for d in drop if d}
    lines = []
    for raw in normalize_text(text).split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        if not line or _BOILERPLATE_LINE.match(line) or _key(line) in dropped:
            continue
        lines.append(line)
    return lines


def clean_field(text: str) -> str:
    """One cleaned line: for titles, leads and other short fields."""
    return " ".join(clean_lines(text))


def clean_body(body: str, title: str = "", lead: str = "") -> str:
    """Cleaned body paragraphs joined by newlines, without repeats of the title or the lead."""
    return "\n".join(clean_lines(body, drop=(clean_field(title), clean_field(lead))))
