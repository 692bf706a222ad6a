"""The pull feed (API.md §11): a department's check events as CloudEvents, in position order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.cloudevents import Renderings
from api.deps import MinPosition, PrincipalDep, ServicesDep, wait_for_store
from api.principal import Principal
from api.problems import Problem, problem_responses
from delivery import feed

router = APIRouter(tags=["feed"])


async def require_department(principal: PrincipalDep) -> Principal:  # no thread hand-off (api.deps)
    if principal.department is None:
        raise Problem("forbidden", "this call needs a department's key")
    return principal


DepartmentPrincipal = Annotated[Principal, Depends(require_department)]


@router.get("/v1/feed", responses=problem_responses("unauthenticated", "forbidden", "validation_error", "not_caught_up"))
def read_feed(
    principal: DepartmentPrincipal,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Events after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_LIMIT, description="Page size")] = 100,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """The caller's events with position > ``after``: ``next_after`` is the last one's position when the page is full."""
    wait_for_store(services, min_position)
    entries = feed.entries(services.database, principal.id, after, limit)
    page = Renderings(services.platform)  # each check of the page read once
    items = [page.event(principal, e.position, e.check_id, e.version) for e in entries]
    return {"items": items, "next_after": entries[-1].position if len(entries) == limit else None}
