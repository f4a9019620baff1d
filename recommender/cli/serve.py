"""`recommender serve`: the HTTP API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recommender.cli.common import err
from recommender.cli.options import IndexOpt


def serve(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="reader processes (beside them, one writer process)")
    ] = 1,
) -> None:
    """Serve the HTTP API with uvicorn: `--workers` readers answer on the port and hand writes
    and text queries to one writer process (every process follows the same index and log)."""
    if index is not None:
        os.environ["RECOMMENDER_INDEX_DIR"] = str(index)
    from recommender.serving.launch import serve as launch

    err.print(f"demo news site: http://{host}:{port}/demo", highlight=False)
    launch(host, port, workers)
