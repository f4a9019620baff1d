"""How `recommender serve` starts uvicorn: one writer process and N reader processes
(`recommender.serving.workers`, which binds the sockets itself)."""

from __future__ import annotations

from typing import Any

from recommender.serving import uvicorn_options
from recommender.serving.workers import run_workers


def serve(host: str, port: int, readers: int = 1) -> None:
    """Serve the API until stopped (SIGINT or SIGTERM)."""
    options: dict[str, Any] = {"factory": True, "log_level": "info", **uvicorn_options()}
    run_workers(readers, host, port, options)
