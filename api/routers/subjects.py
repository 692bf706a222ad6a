"""Subjects (API.md §14): the citizen's access log, erasure, and the erasures' receipts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api import subjects
from api.body import body_route, read_body
from api.deps import Admin, Cursor, Limit, ServicesDep, require_role
from api.principal import Principal
from api.problems import problem_responses
from api.responses import ok
from api.subject_schemas import Accesses, Erasure, ErasurePage, SubjectErase, SubjectQuery

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

PortalOrAuditor = Annotated[Principal, Depends(require_role("citizen_portal", "auditor"))]
AdminOrAuditor = Annotated[Principal, Depends(require_role("admin", "auditor"))]


@body_route(
    router.post, "/accesses", SubjectQuery, "unauthenticated", "forbidden", "validation_error", "invalid_id_number",
    response_model=Accesses,
)
def subject_accesses(request: Request, principal: PortalOrAuditor, services: ServicesDep) -> dict[str, Any]:
    """Every check whose applicant is the person, newest first. The number travels in the body only."""
    body = read_body(request, SubjectQuery)
    return subjects.accesses(services, principal, body.id_number, body.limit, body.cursor)


@body_route(
    router.post, "/erase", SubjectErase, "unauthenticated", "forbidden", "validation_error", "invalid_id_number", "not_found",
    response_model=Erasure,
)
def erase_subject(request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Destroys the person's key and records ``SubjectErased`` on each of their checks; answers a receipt
    signed with the ledger key."""
    body = read_body(request, SubjectErase)
    answer, position = subjects.erase(services, admin, body.id_number, body.legal_basis)
    return ok(services, answer, position)


@router.get("/erasures", response_model=ErasurePage, responses=problem_responses("unauthenticated", "forbidden"))
def list_erasures(principal: AdminOrAuditor, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """The erasures' receipts, oldest first (the operator's record for the auditor)."""
    items, next_cursor = services.views.erasures(limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}
