"""Liveness, readiness and metrics (API.md §8)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServicesDep
from api.metrics import StoreGauges
from api.problems import problem_response, problem_responses
from api.schemas import Health
from delivery import outbox
from domain.timefmt import utcnow
from store.database import STORE_ERRORS

router = APIRouter(tags=["operations"])
READY_LAG = 1000


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """200 while the process runs: answered on the event loop, never queued behind work in threads."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, responses=problem_responses("unavailable"))
def readyz(services: ServicesDep) -> JSONResponse:
    """200 when the event store answers and the views are within 1000 events of the log."""
    try:
        lag = services.views.lag()
    except STORE_ERRORS as error:
        return problem_response("unavailable", f"the event store is unreachable: {error}")
    if lag > READY_LAG:
        return problem_response("unavailable", f"the views are {lag} events behind the log")
    return JSONResponse({"status": "ok", "view_lag": lag})


@router.get("/metrics", response_class=Response)
def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: every worker's request counters, and the store's gauges (api.metrics)."""
    store = StoreGauges(services.views, services.log, utcnow, lambda: outbox.backlog(services.database))
    return Response(request.app.state.metrics.exposition(store), media_type=CONTENT_TYPE_LATEST)
