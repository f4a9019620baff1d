"""The project's own fictional sample corpus: `articles.jsonl`, with `qrels.tsv` (judgements)
and `queries.tsv` (query ids) beside it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_corpus() -> Path:
    """The sample articles (JSONL)."""
    return Path(str(resources.files(__name__).joinpath("articles.jsonl")))
