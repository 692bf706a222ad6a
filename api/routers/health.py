"""Liveness, readiness and metrics (API.md §8)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.bootstrap import Services
from api.deps import ServicesDep
from api.metrics import StoreGauges
from api.problems import problem_response, problem_responses
from api.schemas import Health
from delivery import outbox
from domain.timefmt import parse_time, utcnow
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
    detail: dict[str, object] = {"status": "ok", "view_lag": lag}
    if services.witnessing.clients:
        # Witnesses never make the service unready; the detail says how old the newest cosigned checkpoint is.
        size, age = cosigned_checkpoint(services)
        detail["witnessing"] = {
            "cosigned_tree_size": size,
            "cosigned_age_seconds": age,
            "witnesses": [
                {"witness": s.witness, "url": s.url, "cosigned_tree_size": s.cosigned_size, "last_status": s.last_status}
                for s in services.witnessing.statuses
            ],
        }
    return JSONResponse(detail)


def cosigned_checkpoint(services: Services) -> tuple[int | None, float | None]:
    """The newest cosigned checkpoint's size and the seconds since it was signed (None, None before one)."""
    newest = services.views.newest_cosigned()
    if newest is None:
        return None, None
    return newest[0], round((utcnow() - parse_time(newest[1])).total_seconds(), 3)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: every worker's request counters, and the store's gauges (api.metrics)."""
    store = StoreGauges(services.views, services.log, utcnow, lambda: outbox.backlog(services.database))
    return Response(request.app.state.metrics.exposition(store), media_type=CONTENT_TYPE_LATEST)
