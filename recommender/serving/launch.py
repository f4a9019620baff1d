"""How `recommender serve` starts uvicorn: in this process, or as N worker processes each with
its own listening socket (`recommender.serving.workers`, which binds the sockets itself)."""

from __future__ import annotations

from typing import Any

import uvicorn

from recommender.serving import uvicorn_options
from recommender.serving.workers import APP, run_workers


def serve(host: str, port: int, workers: int = 1) -> None:
    """Serve the API until stopped (SIGINT or SIGTERM)."""
    options: dict[str, Any] = {"factory": True, "log_level": "info", **uvicorn_options()}
    if workers > 1:
        run_workers(workers, host, port, options)
    else:
        uvicorn.run(APP, host=host, port=port, **options)
