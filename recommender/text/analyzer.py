"""The Bulgarian analyzer: text in, stemmed lowercase index terms out.

It splits cleaned text into letter runs, lowercases them, drops stop words (the `stop-words`
package's Bulgarian list plus very short tokens) and reduces each word to a stem. Stemmers:
`prefix` (first `prefix_len` letters), `bulstem` (BulStem rules) and `lemmagen` (LemmaGen
lemmatizer). On the bg-news dev split TF-IDF alone scores nDCG@10 0.786 / 0.785 / 0.791 with
them, and inside the default hybrid ranking 0.893 / 0.887 / 0.888, so `prefix` (6 letters; 5 and
7 score within 0.002) is the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Literal

from pydantic import BaseModel
from stop_words import get_stop_words

from recommender.articles import Article
from recommender.text.clean import clean_body, clean_field

Stemmer = Literal["prefix", "bulstem", "lemmagen", "none"]

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MIN_TOKEN_LENGTH = 2


@cache
def stop_words() -> frozenset[str]:
    """Bulgarian stop words, lowercase."""
    return frozenset(w.lower() for w in get_stop_words("bulgarian"))


@cache
def _bulstem() -> Callable[[str], str]:
    from bulstem.stem import BulStemmer

    stemmer = BulStemmer.from_file("stem-context-2", min_freq=2, left_context=2)
    return stemmer.stem  # type: ignore[no-any-return]


@cache
def _lemmagen() -> Callable[[str], str]:
    import lemmagen3

    lemmatizer = lemmagen3.Lemmatizer("bg")
    return lemmatizer.lemmatize  # type: ignore[no-any-return]


class AnalyzerConfig(BaseModel):
    """How text becomes index terms."""

    stemmer: Stemmer = "prefix"
    prefix_len: int = 6


class Analyzer:
    """Text in, stemmed lowercase terms out (stop words and 1-letter tokens dropped)."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        self._stops = stop_words()
        self._stem = self._stem_function()
        self._memo: dict[str, str] = {}

    def _stem_function(self) -> Callable[[str], str]:
        kind = self.config.stemmer
        if kind == "prefix":
            n = self.config.prefix_len
            return lambda word: word[:n]
        if kind == "bulstem":
            return _bulstem()
        if kind == "lemmagen":
            lemmatize = _lemmagen()
            return lambda word: lemmatize(word).lower()
        return lambda word: word

    def stem(self, word: str) -> str:
        stemmed = self._memo.get(word)
        if stemmed is None:
            stemmed = self._stem(word)
            self._memo[word] = stemmed
        return stemmed

    def tokens(self, text: str) -> list[str]:
        """Lowercase words of `text` without stop words, before stemming."""
        words = (m.group(0).lower() for m in _WORD.finditer(text))
        return [w for w in words if len(w) >= MIN_TOKEN_LENGTH and w not in self._stops]

    def __call__(self, text: str) -> list[str]:
        return [self.stem(w) for w in self.tokens(text)]


def lexical_text(article: Article, title_weight: int = 1) -> str:
    """Cleaned title (repeated `title_weight` times), lead and body, as they are indexed."""
    title, lead = clean_field(article.title), clean_field(article.lead)
    body = clean_body(article.body, article.title, article.lead)
    return "\n".join([title] * title_weight + [lead, body])
