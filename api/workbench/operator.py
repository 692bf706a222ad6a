"""The operator's pages under /ui/operator: departments, their officers, categories and seal keys.

The officers of ``NOCERT_UI_OPERATOR_DEPARTMENT`` act here as the platform's admin principal (API.md §3,
§12): the forms are validated by the API's request models and recorded by the same Platform commands
the admin endpoints call; secrets (a department's API key, an officer's enrolment code) are shown once,
on the page that answers the form, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from api import schemas
from api.principal import ADMIN, ADMIN_PRINCIPAL_ID, Principal
from api.problems import Problem
from api.workbench.pages import Form, FormErrors
from api.workbench.sessions import Officer, Session
from api.workbench.webhook_health import webhook_health
from domain.errors import DomainError

if TYPE_CHECKING:
    from api.workbench.desk import Desk

OPERATOR = Principal(ADMIN_PRINCIPAL_ID, frozenset({ADMIN}))


def _department_body(form: Mapping[str, str]) -> dict[str, Any]:
    roles = [role for role in ("approver", "issuer", "auditor") if form.get(f"role_{role}")]
    return {name: form.get(name, "").strip() for name in ("id", "name", "uscc", "kind", "region")} | {"roles": roles}


def _category_body(form: Mapping[str, str]) -> dict[str, Any]:
    modes = [mode for mode in ("collaboration", "data_sharing", "commitment", "cancelled") if form.get(f"mode_{mode}")]
    hours: Any = form.get("sla_hours", "").strip()
    try:
        hours = float(hours)
    except ValueError:
        pass
    fields = {name: form.get(name, "").strip() for name in ("code", "name", "issuer_kind")}
    return fields | {"modes": modes, "sla_hours": hours}


#: Each form: its API request model and how the form's fields become its body.
FORMS: dict[str, tuple[type[BaseModel], Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "department": (schemas.DepartmentCreate, _department_body),
    "category": (schemas.CategoryCreate, _category_body),
    "officer": (schemas.OfficerCreate, lambda f: {"login": f.get("login", "").strip(), "name": f.get("name", "").strip()}),
    "category-status": (schemas.CategoryPatch, lambda f: {"status": f.get("status", "")}),
    "revoke-seal": (schemas.KeyRevocation, lambda f: {"reason": f.get("reason", "")}),
    "rotate-seal": (schemas.Empty, lambda f: {}),
    "remove-officer": (schemas.Empty, lambda f: {}),
}


class Operator:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def routes(self, pages: APIRouter) -> None:
        pages.add_api_route("/operator", self.overview, methods=["GET"])
        pages.add_api_route("/operator/{action}", self.act, methods=["POST"])

    def signed_in_operator(self, request: Request, session: Session | None = None) -> tuple[Session, Principal, Principal]:
        """The session, its officer's department principal, and the admin principal it may act as."""
        session, principal = self.desk.signed_in(request, session)
        if principal.id != self.desk.workbench.settings.ui_operator_department:
            raise Problem("forbidden", "only officers of the operator's department manage the platform")
        return session, principal, OPERATOR

    def overview(self, request: Request) -> Response:
        try:
            session, principal, _ = self.signed_in_operator(request)
        except Problem as error:
            session, principal = self.desk.signed_in(request)
            return self.desk.refused(request, session, principal, error)
        return self.page(request, session, principal)

    def page(self, request: Request, session: Session, principal: Principal, status: int = 200, **extra: Any) -> Response:
        services = self.desk.services(request)
        platform = services.platform
        now = platform.clock()
        departments = [platform.department(i) for i in sorted(platform.directory().listings)]
        categories = [platform.category(code) for code in sorted(platform.catalogue().codes)]
        return self.desk.render(
            request, "operator.html", session, principal, status=status, departments=departments,
            categories=categories, now=now, errors=extra.pop("errors", FormErrors()),
            webhooks=webhook_health(services, now), **extra,
        )

    def act(self, request: Request, action: str, form: Form) -> Response:
        session = self.desk.workbench.checked(request, form)
        try:
            session, principal, admin = self.signed_in_operator(request, session)
        except Problem as error:
            session, principal = self.desk.signed_in(request, session)
            return self.desk.refused(request, session, principal, error)
        if action not in FORMS:
            return self.desk.refused(request, session, principal, Problem("not_found", "no such form"))
        model, body_of = FORMS[action]
        errors = FormErrors()
        try:
            body: Any = model.model_validate(body_of(form))
        except ValidationError as invalid:
            for problem in invalid.errors():
                errors.add(".".join(str(part) for part in problem["loc"]) or action, problem["msg"])
            return self.page(request, session, principal, status=422, errors=errors)
        try:
            shown = self.run(request, action, form, body)
        except (Problem, DomainError) as error:
            errors.add(action, f"{self.desk.workbench._message(self.desk.workbench.lang(request), f'code.{error.code}')}: {error.detail}")
            return self.page(request, session, principal, status=Problem(error.code, "").status, errors=errors)
        self.desk.services(request).views.nudge()
        if shown:
            return self.page(request, session, principal, shown=shown)
        return RedirectResponse("/ui/operator?done=operator", status_code=303)

    def run(self, request: Request, action: str, form: Mapping[str, str], body: Any) -> dict[str, str] | None:
        """The admin command of ``action``; returns the secret to show once, if it made one."""
        services = self.desk.services(request)
        platform = services.platform
        target = form.get("department", "")
        if action == "department":
            department, issued, _ = platform.register_department(
                body.id, body.name, body.uscc, list(body.roles), body.kind, body.region
            )
            return {"what": "api_key", "for": department.department_id, "secret": issued.api_key}
        if action == "category":
            platform.create_category(body.code, body.name, body.issuer_kind, list(body.modes), body.sla_hours, None)
        elif action == "category-status":
            platform.change_category(form.get("code", ""), {}, body.status)
        elif action == "officer":
            platform.department(target)
            code, account = self.desk.workbench.accounts.creation(Officer(target, body.login))
            platform.add_officer(target, body.login, body.name, [account])
            return {"what": "enrolment_code", "for": f"{body.login}@{target}", "secret": code}
        elif action == "remove-officer":
            login = form.get("login", "")
            platform.remove_officer(target, login, [self.desk.workbench.accounts.removal(Officer(target, login))])
        elif action == "rotate-seal":
            platform.rotate_seal(target)
        elif action == "revoke-seal":
            platform.revoke_seal(target, form.get("kid", ""), body.reason, None)
        return None
