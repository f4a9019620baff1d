"""Operations: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from recommender.api.state import State, get_state
from recommender.engine import Engine
from recommender.serving.errors import ErrorOut
from recommender.serving.forward import writer_readiness
from recommender.serving.metrics import Metrics

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(state: Annotated[State, Depends(get_state)]) -> dict[str, object]:
    """The index and the encoder are loaded: reads, writes and text queries can be served. In
    `recommender serve`, a reader answers this with the writer's readiness and its own index;
    `role` and `pid` say which process answered (`writer` names the writer process);
    `waves_pending`: acknowledged writes whose older lists are not rewritten yet."""
    e = state.ready_engine()
    if state.settings.role == "reader":
        return reader_readiness(state, e)
    if state.encoder_error is not None:
        raise HTTPException(status_code=503, detail=f"encoder not loaded: {state.encoder_error}")
    return {
        # reads go on when writes are refused (a full disk): degraded, not unready
        "status": "ready" if e.write_error is None else "degraded",
        "writes": "ok" if e.write_error is None else f"refused since {e.write_error}",
        "articles": len(e),
        "model_id": e.model_id,
        "generation": e.generation_path.name,
        "seq": e.seq,
        "waves_pending": e.waves_pending(),
        "encoder": e.encoder.describe() if e.encoder is not None else None,
        "role": state.settings.role,
        "pid": os.getpid(),
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def prometheus_metrics(request: Request) -> Response:
    """Metrics in the Prometheus text format."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def reader_readiness(state: State, engine: Engine) -> dict[str, object]:
    """A reader is ready when its index is loaded and the writer is ready: the writer's status,
    writes and encoder with this reader's own view of the index."""
    socket = state.settings.writer_socket
    if socket is None:  # (Settings refuses a reader without one)
        raise HTTPException(status_code=503, detail="writer not ready: no writer socket")
    status, writer = writer_readiness(socket)
    if status != 200:
        raise HTTPException(status_code=503, detail=f"writer not ready: {writer.get('error')}")
    return {
        "status": writer.get("status"),
        "writes": writer.get("writes"),
        "articles": len(engine),
        "model_id": engine.model_id,
        "generation": engine.generation_path.name,
        "seq": engine.seq,
        "waves_pending": writer.get("waves_pending"),
        "encoder": writer.get("encoder"),
        "role": "reader",
        "pid": os.getpid(),
        "writer": {k: writer.get(k) for k in ("pid", "generation", "seq", "articles")},
    }
