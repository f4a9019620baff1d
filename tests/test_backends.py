"""The bf16 backend against the fp32 reference, the `auto` choice by CPU, and the model id rule."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from recommender.articles import Article
from recommender.config import DEFAULT_MODEL
from recommender.embedding.backends import (
    CPU_FLAGS_ENV,
    SentenceTransformerBackend,
    TorchBf16Backend,
    cpu_flags,
    make_backend,
    model_id_for,
    resolve_backend,
)
from recommender.embedding.encoder import ArticleEncoder

NO_BF16 = frozenset({"avx2", "fma", "avx512f", "avx512_vnni"})
BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})


@pytest.fixture(scope="module")
def bf16_backend(model_dir: Path) -> TorchBf16Backend:
    return TorchBf16Backend(str(model_dir), max_tokens=512)


def test_bf16_vectors_pass_the_cosine_test(
    bf16_backend: TorchBf16Backend, encoder: ArticleEncoder, sample_articles: list[Article]
) -> None:
    # 8 articles of the sample's 173, at 512 tokens: where the CPU lacks bf16 instructions
    # (AVX2-only machines) torch emulates them, about 3 s an article
    articles = sample_articles[::22]
    fast = ArticleEncoder(bf16_backend, DEFAULT_MODEL).encode_articles(articles)
    reference = encoder.encode_articles(articles)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cos = (fast * reference).sum(axis=1)
    # the class's claim, which keeps the reference's model id (`model_id_for`), is this test
    assert TorchBf16Backend.interchangeable is bool(cos.min() >= 0.99) is True
    assert np.abs(fast - reference).max() > 1e-4, "bf16 weights should change the vectors a bit"


def test_auto_picks_bf16_only_where_the_cpu_has_it(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(backend="auto")
    fast = make_backend(settings, flags=BF16)
    assert isinstance(fast, TorchBf16Backend)
    assert fast.describe()["backend"] == "torch-bf16"
    fallback = make_backend(settings, flags=NO_BF16)
    assert type(fallback) is SentenceTransformerBackend
    assert "lacks AVX512_BF16" in fallback.describe()["path"]
    explicit = make_backend(settings_factory(backend="sentence-transformers"), flags=BF16)
    assert type(explicit) is SentenceTransformerBackend
    assert "lacks" not in explicit.path


def test_model_id_changes_only_for_vectors_that_fail_the_cosine_test(
    settings_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(backend="auto")
    assert model_id_for(settings, flags=BF16) == DEFAULT_MODEL
    monkeypatch.setattr(TorchBf16Backend, "interchangeable", False)
    assert model_id_for(settings, flags=BF16) == f"{DEFAULT_MODEL}+torch-bf16"
    assert model_id_for(settings, flags=NO_BF16) == DEFAULT_MODEL


def test_encoder_describes_its_path(bf16_backend: TorchBf16Backend) -> None:
    info = ArticleEncoder(bf16_backend, DEFAULT_MODEL).describe()
    assert info["model_id"] == DEFAULT_MODEL and info["backend"] == "torch-bf16"
    assert info["path"].startswith("bf16 weights") and info["strategy"] == "head"


def test_cpu_flags_stand_in_makes_auto_decide_as_on_that_cpu(
    settings_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CPU_FLAGS_ENV, "fpu sse2 avx fma f16c avx2")
    assert cpu_flags() == frozenset({"fpu", "sse2", "avx", "fma", "f16c", "avx2"})
    chosen = make_backend(settings_factory(backend="auto"))
    assert type(chosen) is SentenceTransformerBackend
    assert "an emulated CPU" in chosen.describe()["cpu_features"]
    monkeypatch.setenv(CPU_FLAGS_ENV, "avx2 avx512f avx512_bf16")
    assert resolve_backend("auto") == "torch-bf16"
    monkeypatch.delenv(CPU_FLAGS_ENV)
    assert "emulated" not in chosen.describe()["cpu_features"]


def test_a_process_loads_a_model_once_and_its_encoders_share_it_across_threads(
    settings_factory, sample_articles: list[Article]
) -> None:  # type: ignore[no-untyped-def]
    first = ArticleEncoder.from_settings(
        settings_factory(backend="sentence-transformers"), use_cache=False
    )
    again = ArticleEncoder.from_settings(
        settings_factory(backend="sentence-transformers"), use_cache=False
    )
    assert again.backend is first.backend
    shorter = make_backend(settings_factory(backend="sentence-transformers", max_tokens=128))
    assert shorter is not first.backend
    assert isinstance(shorter, SentenceTransformerBackend)
    assert shorter.model.max_seq_length == 128
    articles = sample_articles[:6]
    alone = first.encode_articles(articles)
    out: dict[int, np.ndarray] = {}

    def encode(n: int, enc: ArticleEncoder) -> None:
        out[n] = enc.encode_articles(articles)

    threads = [threading.Thread(target=encode, args=(n, e)) for n, e in enumerate((first, again))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == [0, 1]
    assert np.allclose(out[0], alone, atol=1e-5) and np.allclose(out[1], alone, atol=1e-5)
