"""Proof categories (API.md §3): the catalogue the platform operator keeps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.body import body_route, read_body
from api.deps import Admin, Cursor, Limit, PrincipalDep, ServicesDep, StoreAt
from api.pagination import listing, page
from api.presenters import category_document
from api.problems import Problem, problem_responses
from api.responses import created, last_position, ok
from api.schemas import Category, CategoryCreate, CategoryPage, CategoryPatch

router = APIRouter(prefix="/v1/categories", tags=["categories"])


@body_route(
    router.post, "", CategoryCreate, "unauthenticated", "forbidden", "validation_error", "conflict",
    status_code=201, response_model=Category,
)
def create_category(request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Adds a proof category to the catalogue; new checks may name it while it is active with the collaboration mode."""
    body = read_body(request, CategoryCreate)
    category, position = services.platform.create_category(
        body.code, body.name, body.issuer_kind, list(body.modes), body.sla_hours, body.claims_schema
    )
    return created(services, category_document(category), position)


@router.get("", response_model=CategoryPage, responses=problem_responses("unauthenticated", "validation_error"))
def list_categories(
    principal: PrincipalDep, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None,
    min_position: StoreAt = None,
) -> dict[str, Any]:
    """Every proof category of the catalogue, in the order it was created."""
    codes = services.platform.catalogue().codes
    chosen, next_cursor = page(codes, str, limit, cursor, "categories")
    return listing([category_document(services.platform.category(code)) for code in chosen], next_cursor)


@body_route(
    router.patch, "/{code}", CategoryPatch, "unauthenticated", "forbidden", "not_found", "validation_error",
    response_model=Category,
)
def change_category(code: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """Changes name, modes, SLA, claims schema or status (``active`` | ``retired``)."""
    services.platform.category(code)
    body = read_body(request, CategoryPatch)
    changes = body.model_dump(exclude_unset=True)
    status = changes.pop("status", None)
    for field in ("name", "modes", "sla_hours", "status"):
        if field in body.model_fields_set and getattr(body, field) is None:
            raise Problem("validation_error", f"{field} cannot be null")
    category, position = services.platform.change_category(code, changes, status)
    if not position:  # nothing changed, nothing recorded: the category is as its last event left it
        position = last_position(services, category.id)
    return ok(services, category_document(category), position)
