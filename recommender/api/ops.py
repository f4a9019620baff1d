"""Operations: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from recommender.api.state import State, get_state
from recommender.serving.errors import ErrorOut
from recommender.serving.metrics import Metrics

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(state: Annotated[State, Depends(get_state)]) -> dict[str, object]:
    """The index and the encoder are loaded: reads, writes and text queries can be served."""
    e = state.ready_engine()
    if state.encoder_error is not None:
        raise HTTPException(status_code=503, detail=f"encoder not loaded: {state.encoder_error}")
    return {
        # reads go on when writes are refused (a full disk): degraded, not unready
        "status": "ready" if e.write_error is None else "degraded",
        "writes": "ok" if e.write_error is None else f"refused since {e.write_error}",
        "articles": len(e),
        "model_id": e.model_id,
        "generation": e.gen.path.name,
        "seq": e.gen.mirror.seq,
        "encoder": e.encoder.describe() if e.encoder is not None else None,
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
