"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from api.bootstrap import Services
from api.principal import Principal
from api.problems import Problem

WAIT_SECONDS = 5.0


# The dependencies below are ``async`` although they never wait: FastAPI runs a plain ``def`` dependency in
# the thread pool, a hand-off to a worker thread and back for each of them on every request (three per
# command, before the endpoint's own), where these take microseconds on the event loop.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_principal(request: Request) -> Principal:
    """The caller; a department's with the officer its ``X-Officer`` header names (the platform's
    commands refuse one that is no active officer of it: 422 ``invalid_officer``)."""
    principal: Principal = request.scope["nocert.principal"]
    officer = request.headers.get("x-officer")
    if officer is not None and principal.department is not None:
        return replace(principal, officer=officer.strip())
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


class RoleCheck:
    """A dependency refusing with 403 a principal that has none of ``roles`` (`api.openapi` documents the
    403 of every operation that depends on one). Called directly (the pages), `check` decides."""

    def __init__(self, *roles: str) -> None:
        self.roles = roles

    def check(self, principal: Principal) -> Principal:
        if not any(principal.has_role(role) for role in self.roles):
            raise Problem("forbidden", f"this call needs the role {' or '.join(self.roles)}")
        return principal

    async def __call__(self, principal: PrincipalDep) -> Principal:
        return self.check(principal)


def require_role(*roles: str) -> RoleCheck:
    return RoleCheck(*roles)


Admin = Annotated[Principal, Depends(require_role("admin"))]
Approver = Annotated[Principal, Depends(require_role("approver"))]
Issuer = Annotated[Principal, Depends(require_role("issuer"))]
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
CheckReader = Annotated[Principal, Depends(require_role("approver", "issuer", "auditor"))]

MinPosition = Annotated[
    int | None,
    Query(ge=0, le=2**63 - 1, description="Answer only once the data reflects every event up to this position"),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=512, description="Opaque cursor from the previous page")]


async def _views_reach(services: ServicesDep, min_position: MinPosition = None) -> int | None:
    if min_position is not None and not await services.view_waits.wait(min_position, WAIT_SECONDS):
        raise Problem("not_caught_up", f"the views have not reached position {min_position} yet; retry")
    return min_position


async def _store_reaches(services: ServicesDep, min_position: MinPosition = None) -> int | None:
    if min_position is not None and not await services.store_waits.wait(min_position, WAIT_SECONDS):
        raise Problem("not_caught_up", f"position {min_position} has not been recorded; retry")
    return min_position


ViewsAt = Annotated[int | None, Depends(_views_reach)]
"""``?min_position=`` of a read from the views: answered once they reflect it (503 after 5 s); the wait
holds no thread (api.waits). Declare it after the principal, so that 401/403 come first."""

StoreAt = Annotated[int | None, Depends(_store_reaches)]
"""``?min_position=`` of a read straight from the event store: answered once that position is recorded."""


def wait_for_views(services: Services, position: int | None) -> None:
    """Read-your-writes over the views: 503 ``not_caught_up`` after 5 s."""
    if position is not None and not services.views.wait_for(position, WAIT_SECONDS):
        raise Problem("not_caught_up", f"the views have not reached position {position} yet; retry")


def wait_for_store(services: Services, position: int | None) -> None:
    """Read-your-writes for reads straight from the event store: the position must be recorded."""
    if position is None:
        return
    recorded = Retrying(
        retry=retry_if_result(lambda head: head < position),
        stop=stop_after_delay(WAIT_SECONDS),
        wait=wait_fixed(0.02),
        retry_error_callback=lambda state: None,
    )(services.log.max_position)
    if recorded is None:
        raise Problem("not_caught_up", f"position {position} has not been recorded; retry")


def require_known_category(services: Services, category: str | None) -> None:
    """A list filtered by a category that does not exist is a bad filter (422), not an empty list."""
    if category is not None and category not in services.platform.catalogue().codes:
        raise Problem("validation_error", f"unknown category {category!r}")


def parse_uuid(value: str, what: str) -> UUID:
    """Ids that are no UUID name nothing that exists: 404, never 422."""
    try:
        return UUID(value)
    except ValueError:
        raise Problem("not_found", f"{what} not found") from None
