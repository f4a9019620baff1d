"""The index an eval command reads: an index of exactly the input file's articles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine, IndexUnavailable
from recommender.eval.runs import default_index_dir
from recommender.indexing import BuildReport, build_index, read_input


class CollectionRefused(ValueError):
    """A given index that does not hold the input's articles; it is not rebuilt over."""


def collection_index(
    input: Path,
    index: Path | None,
    settings: Settings,
    announce: Callable[[str], None] = lambda _: None,
) -> Path:
    """An index of `input`. A given `index` is used only if it holds exactly these articles,
    built with the configured model; it is never rebuilt over (it may be someone's index):
    `CollectionRefused` says why. The default, `index/eval-<input name>-<path hash>`, is the
    harness's own: rebuilt when stale (`announce` is told first)."""
    directory = index or default_index_dir(input)
    wanted = {a.id for a in read_input(input, BuildReport(input, directory))}
    model_id = model_id_for(settings)
    given = index is not None and directory.exists() and any(directory.iterdir())
    refusal = f"refusing to rebuild over --index {directory}; give another --index, or none"
    try:
        existing = Engine(directory, settings, model_id=model_id)
    except IndexUnavailable as exc:
        if given:
            raise CollectionRefused(f"{exc}; {refusal}") from None
    else:
        ids = set(existing.ids())
        existing.close()
        if ids == wanted:
            return directory
        if given:
            why = (
                f"it holds {len(ids)} articles, {input} has {len(wanted)} "
                f"({len(ids - wanted)} only in the index, {len(wanted - ids)} only in the input)"
            )
            raise CollectionRefused(f"index {directory} does not match {input}: {why}; {refusal}")
    announce(f"indexing {input} into {directory}")
    build_index(input, directory, ArticleEncoder.from_settings(settings), settings, replace=True)
    return directory
