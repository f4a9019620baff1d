"""`index build --ray`: the sample corpus through Ray Data on a local instance (2 CPUs, two
encoder actors) equals the local build; cached articles are not sent; rejects as locally.
Encoded at a 128-token budget (fp32): the bf16 backend this test used before is emulated, and
slow, on CPUs without AVX512_BF16."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recommender.articles import Article
from recommender.cli import app
from recommender.config import DEFAULT_MODEL, Settings
from recommender.embedding.backends import SentenceTransformerBackend, model_id_for
from recommender.embedding.cache import EmbeddingCache
from recommender.embedding.encoder import ArticleEncoder, article_text
from recommender.engine import Engine
from recommender.sample import sample_corpus

pytestmark = pytest.mark.slow
runner = CliRunner()
SENT = 24
BUDGET = 128


def _vectors_by_id(index: Path, model_id: str = DEFAULT_MODEL) -> dict[str, np.ndarray]:
    engine = Engine(index, Settings(index_dir=index), model_id=model_id)
    rows = engine.read_view().store.all_articles()
    by_id = {r.teaser.id: r.vector.copy() for r in rows}
    engine.close()
    return by_id


def _meta(index: Path) -> dict[str, object]:
    engine = Engine(index, Settings(index_dir=index))
    meta = engine.meta
    engine.close()
    return meta


def test_ray_build_equals_local_and_honours_the_cache(
    tmp_path: Path,
    model_dir: Path,
    sample_index: Path,
    sample_articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache_path = tmp_path / "cache.sqlite"
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(cache_path))
    monkeypatch.setenv("RECOMMENDER_BACKEND", "sentence-transformers")
    monkeypatch.setenv("RECOMMENDER_MAX_TOKENS", str(BUDGET))
    model_id = model_id_for(Settings())
    backend = SentenceTransformerBackend(str(model_dir), BUDGET)
    local = ArticleEncoder(backend, model_id, max_tokens=BUDGET)
    fresh, cached = sample_articles[:SENT], sample_articles[SENT:]
    # Cached rows get the session's vectors (512 tokens) under the key of a 128-token budget: a
    # build that honours the cache must carry them over bit for bit, one that re-encodes them
    # (at 128 tokens) would not. (The budget also makes the actors' encoding cheap.)
    prior_vectors = _vectors_by_id(sample_index)
    cache = EmbeddingCache(cache_path)
    cache.put_many(
        local.cache_key,
        ((local.text_hash(article_text(a)), prior_vectors[a.id]) for a in cached),
    )
    cache.close()

    src = tmp_path / "in.jsonl"
    lines = sample_corpus().read_text(encoding="utf-8").splitlines()
    lines.insert(5, '{"id": "bad-1", "title": "Без текст"}')
    lines.insert(9, "{broken json")
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = tmp_path / "ray-idx"
    args = ["index", "build", "-i", str(src), "--index", str(index), "--no-progress"]
    result = runner.invoke(app, [*args, "--ray", "--concurrency", "2", "--num-cpus", "1"])
    assert result.exit_code == 0, result.output
    n = len(sample_articles)
    assert f"ray: {n} texts, {n - SENT} from the cache, {SENT} sent to the cluster" in result.output
    assert f"indexed {n} articles" in result.output and "2 rejected" in result.output
    assert f"{src}:6: needs a non-empty 'body' or 'lead'" in result.output
    assert f"{src}:10: invalid JSON" in result.output
    rejects = [json.loads(x) for x in (tmp_path / "ray-idx.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [6, 10]

    encoder_info = _meta(index)["encoder"]
    assert isinstance(encoder_info, dict) and encoder_info["backend"] == "sentence-transformers"
    assert encoder_info["budget"] == BUDGET
    rows = _vectors_by_id(index, model_id)
    assert [a.id for a in sample_articles] == list(rows)
    reference = local.encode_articles(fresh)
    ray_rows = np.stack([rows[a.id] for a in fresh])
    assert (ray_rows * reference).sum(axis=1).min() >= 0.9999
    assert all(np.array_equal(rows[a.id], prior_vectors[a.id]) for a in cached)
    reopened = EmbeddingCache(cache_path)
    hashes = [local.text_hash(article_text(a)) for a in fresh]
    assert len(reopened.get_many(local.cache_key, hashes, 384)) == SENT
    reopened.close()
