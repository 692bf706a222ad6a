"""Departments, their API keys and seal keys (API.md §3), for the platform operator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.body import body_route, read_body
from api.deps import Admin, Cursor, Limit, PrincipalDep, ServicesDep, StoreAt
from api.pagination import listing, page
from api.presenters import department_document, seal_entry
from api.problems import Problem, problem_responses
from api.responses import created, last_position, no_content, ok
from api.schemas import (
    ApiKeyCreated,
    DepartmentCreate,
    DepartmentCreated,
    DepartmentPage,
    DepartmentPatch,
    Empty,
    KeyRevocation,
    Signing,
)
from api.schemas import Certificate as CertificateOut
from api.schemas import Department as DepartmentOut
from domain.department import Department
from domain.timefmt import parse_time

router = APIRouter(prefix="/v1/departments", tags=["departments"])


@body_route(
    router.post, "", DepartmentCreate, "unauthenticated", "forbidden", "validation_error", "invalid_uscc", "conflict",
    status_code=201, response_model=DepartmentCreated,
)
def create_department(request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Registers a department; issuers get a seal key and certificate. The API key is shown once."""
    body = read_body(request, DepartmentCreate)
    department, issued, position = services.platform.register_department(
        body.id, body.name, body.uscc, list(body.roles), body.kind, body.region
    )
    seal = department.seals.get(department.current_kid) if department.current_kid else None
    document = {
        "id": department.department_id,
        "name": department.name,
        "uscc": department.uscc,
        "roles": department.roles,
        "kind": department.kind,
        "region": department.region,
        "api_key": issued.api_key,
        "api_key_id": issued.api_key_id,
        "signing": {"kid": seal.kid, "certificate_pem": seal.certificate_pem} if seal else None,
    }
    return created(services, document, position)


@router.get("", response_model=DepartmentPage, responses=problem_responses("unauthenticated", "validation_error"))
def list_departments(
    principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None,
    min_position: StoreAt = None,
) -> dict[str, Any]:
    """Public data of every department, with its certificates (never API keys)."""
    now = services.platform.clock()
    ids = sorted(services.platform.directory().listings)
    chosen, next_cursor = page(ids, str, limit, cursor, "departments")
    return listing([department_document(services.platform.department(i), now) for i in chosen], next_cursor)


@body_route(
    router.patch, "/{department_id}", DepartmentPatch,
    "unauthenticated", "forbidden", "not_found", "validation_error", "concurrent_update",
    response_model=DepartmentOut,
)
def change_department(department_id: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Renames, moves (checks raised afterwards see the new region), deactivates or re-activates a department
    (API.md §10). An inactive department is no routing target, cannot be named as issuer, and its keys answer
    401 until it is re-activated."""
    services.platform.department(department_id)
    body = read_body(request, DepartmentPatch)
    for field in body.model_fields_set:
        if getattr(body, field) is None:
            raise Problem("validation_error", f"{field} cannot be null")
    department, position = services.platform.change_department(
        department_id, name=body.name, region=body.region, status=body.status
    )
    if position is None:  # nothing changed, nothing recorded: the department is as its last event left it
        position = last_position(services, department.id)
    return ok(services, department_document(department, services.platform.clock()), position)


@body_route(
    router.post, "/{department_id}/api-keys", Empty, "unauthenticated", "forbidden", "not_found",
    status_code=201, response_model=ApiKeyCreated,
)
def issue_api_key(department_id: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """A further API key for the department, shown once."""
    services.platform.department(department_id)
    read_body(request, Empty)
    issued, position = services.platform.issue_api_key(department_id)
    return created(services, {"api_key": issued.api_key, "api_key_id": issued.api_key_id}, position)


@router.delete(
    "/{department_id}/api-keys/{api_key_id}",
    status_code=204,
    responses=problem_responses("unauthenticated", "forbidden", "not_found"),
)
def revoke_api_key(department_id: str, api_key_id: str, admin: Admin, services: ServicesDep) -> Response:
    """The key stops working at once, in every worker."""
    position = services.platform.revoke_api_key(department_id, api_key_id)
    return no_content(services, position)


@body_route(
    router.post, "/{department_id}/keys", Empty, "unauthenticated", "forbidden", "not_found", "conflict",
    status_code=201, response_model=Signing,
)
def rotate_seal(department_id: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """A new seal key and certificate; the previous one is retired and still verifies its proofs."""
    services.platform.department(department_id)
    read_body(request, Empty)
    seal, position = services.platform.rotate_seal(department_id)
    return created(services, {"kid": seal.kid, "certificate_pem": seal.certificate_pem}, position)


@body_route(
    router.post, "/{department_id}/keys/{kid}/revoke", KeyRevocation,
    "unauthenticated", "forbidden", "not_found", "validation_error", "conflict",
    response_model=CertificateOut,
)
def revoke_seal(department_id: str, kid: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Proofs signed with the key at or after ``effective_at`` (default now) no longer verify."""
    department = services.platform.department(department_id)
    if department.has_role("issuer") and kid not in department.seals:
        raise Problem("not_found", "key not found")
    body = read_body(request, KeyRevocation)
    try:
        effective_at = parse_time(body.effective_at) if body.effective_at is not None else None
    except ValueError:
        raise Problem("validation_error", "effective_at must be an RFC 3339 time") from None
    _, position = services.platform.revoke_seal(department_id, kid, body.reason, effective_at)
    if not position:  # revoked from that time or earlier already: nothing recorded, the last event stands
        position = last_position(services, Department.stream_id(department_id))
    department = services.platform.department(department_id)
    return ok(services, seal_entry(department, kid, services.platform.clock()), position)


