"""Officers of departments (API.md §12): the admin adds and removes them; the admin and the department
itself list them. Credentials stay in the workbench's accounts (never in events): the enrolment code is
shown once and kept as a hash, written in the transaction of the event that adds the officer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.body import body_route, read_body
from api.deps import Admin, Cursor, Limit, MinPosition, PrincipalDep, ServicesDep, wait_for_store
from api.pagination import listing, page
from api.presenters import officer_document
from api.problems import Problem, problem_responses
from api.responses import created, no_content
from api.schemas import OfficerCreate, OfficerCreated, OfficerPage
from api.workbench.accounts import Accounts
from api.workbench.sessions import Officer

router = APIRouter(prefix="/v1/departments/{department_id}/officers", tags=["officers"])


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.workbench.accounts
    return accounts


@body_route(
    router.post, "", OfficerCreate, "unauthenticated", "forbidden", "not_found", "validation_error", "conflict",
    status_code=201, response_model=OfficerCreated,
)
def add_officer(department_id: str, request: Request, admin: Admin, services: ServicesDep) -> JSONResponse:
    """A new officer of the department; its enrolment code is shown this once."""
    department = services.platform.department(department_id)
    body = read_body(request, OfficerCreate)
    code, account = _accounts(request).creation(Officer(department.department_id, body.login))
    officer, position = services.platform.add_officer(department_id, body.login, body.name, [account])
    return created(services, {**officer_document(department, officer), "enrolment_code": code}, position)


@router.get(
    "",
    response_model=OfficerPage,
    responses=problem_responses("unauthenticated", "forbidden", "not_found", "validation_error"),
)
def list_officers(
    department_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """The department's officers, removed ones included (their logins stay taken), without secrets."""
    if not principal.is_admin and principal.id != department_id:
        raise Problem("forbidden", "only the admin and the department itself list its officers")
    wait_for_store(services, min_position)
    department = services.platform.department(department_id)
    chosen, next_cursor = page(services.platform.officers(department_id), lambda o: o.login, limit, cursor, "officers")
    return listing([officer_document(department, officer) for officer in chosen], next_cursor)


@router.delete(
    "/{login}",
    status_code=204,
    responses=problem_responses("unauthenticated", "forbidden", "not_found"),
)
def remove_officer(department_id: str, login: str, request: Request, admin: Admin, services: ServicesDep) -> Response:
    """The officer cannot sign in any more, and its sessions end at once (same transaction as the event)."""
    position = services.platform.remove_officer(department_id, login, [_accounts(request).removal(Officer(department_id, login))])
    return no_content(services, position)
